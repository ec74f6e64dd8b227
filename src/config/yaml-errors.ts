/**
 * The yaml library's indentation errors say what its parser saw ("Sequence item without - indicator",
 * "All mapping items must start at the same column", "Nested mappings are not allowed in compact
 * mappings"), not what the user got wrong. `explainYamlError` says that (probably mis-indented, or a
 * missing ":"), at the line that is off, and keeps the library's text in parentheses. Other errors
 * pass through unchanged.
 */
import type { YAMLError } from 'yaml'

export interface ExplainedYamlError {
  /** Source offset to report: the first character of the line that is probably wrong. */
  readonly offset: number
  readonly message: string
}

interface Line {
  readonly start: number
  /** Leading spaces. */
  readonly indent: number
  readonly content: string
}

function linesOf(text: string): Line[] {
  const out: Line[] = []
  let start = 0
  for (const raw of text.split('\n')) {
    const content = raw.replace(/\r$/, '')
    out.push({ start, indent: content.length - content.trimStart().length, content })
    start += raw.length + 1
  }
  return out
}

const blank = (l: Line) => l.content.trim() === '' || l.content.trimStart().startsWith('#')

/** The key a line starts with (after any `- `), or undefined when it holds no `key:`. */
function keyOf(l: Line): string | undefined {
  const m = /^(?:-\s+)*([^\s:#][^:#]*?)\s*:(\s|$)/.exec(l.content.trimStart())
  return m?.[1]
}

/** Column (1-based) where a line's key starts, after any `- `. */
function keyColumn(l: Line): number {
  const after = /^(?:-\s+)*/.exec(l.content.trimStart())?.[0].length ?? 0
  return l.indent + after + 1
}

/** How to name a line in a message: its key, or the list item it starts. */
const what = (l: Line): string => {
  const trimmed = l.content.trim()
  if (trimmed.startsWith('-')) return `the list item "${trimmed.length > 40 ? `${trimmed.slice(0, 37)}...` : trimmed}"`
  const key = keyOf(l)
  if (key !== undefined) return `"${key}"`
  const word = trimmed.split(/\s/)[0] ?? ''
  return word === '' ? 'this line' : `"${word}"`
}

export function explainYamlError(text: string, error: YAMLError): ExplainedYamlError {
  const original = error.message.split('\n')[0] ?? ''
  const offset = error.pos[0]
  const lines = linesOf(text)
  const index = Math.max(
    0,
    lines.findLastIndex((l) => l.start <= offset),
  )
  const at = (l: Line) => ({ offset: l.start + l.indent })
  const line = lines[index]
  // `split` yields at least one line, and `index` is clamped into them.
  if (line === undefined) throw new Error('explainYamlError: no line at the error offset')
  const yamlSays = `(YAML: ${original})`

  if (error.code === 'TAB_AS_INDENT')
    return { offset: line.start, message: `indented with a tab: YAML indentation takes spaces only ${yamlSays}` }

  const missingColon = (l: Line) => ({
    ...at(l),
    message: `probably a missing ":": ${what(l)} is not followed by ":" and a value ${yamlSays}`,
  })

  if (error.code === 'MISSING_CHAR' && original.startsWith('Implicit map keys need to be followed by map values'))
    return missingColon(line)

  if (error.code === 'BLOCK_AS_IMPLICIT_KEY' || error.code === 'MULTILINE_IMPLICIT_KEY') {
    // A word with no ":" runs into the next line, which YAML then takes as part of one long key.
    if (keyOf(line) === undefined && !line.content.trimStart().startsWith('-')) return missingColon(line)
    // A line that starts deeper than the key above it continues that key's value.
    const next = lines.findIndex((l, i) => i > index && !blank(l))
    const below = next >= 0 ? lines[next] : undefined
    if (below !== undefined && below.indent + 1 > keyColumn(line))
      return {
        ...at(below),
        message: `probably mis-indented: ${what(below)} starts at column ${below.indent + 1}, deeper than "${keyOf(line)}" on the line above (column ${keyColumn(line)}), so YAML reads it as part of that value ${yamlSays}`,
      }
    if (line.content.trimStart().startsWith('-'))
      return {
        ...at(line),
        message: `probably mis-indented: ${what(line)} at column ${line.indent + 1} sits among the keys of a mapping; a list goes under its key, indented deeper ${yamlSays}`,
      }
  }

  const misaligned =
    (error.code === 'BAD_INDENT' && /^All \w+ items must start at the same column/.test(original)) ||
    (error.code === 'MISSING_CHAR' && original.startsWith('Sequence item without - indicator'))
  if (misaligned) {
    const items = original.includes('sequence items') ? 'list items' : 'keys'
    return {
      ...at(line),
      message: `probably mis-indented: ${what(line)} at column ${line.indent + 1} does not line up with the ${items} above it; the ${items} of one ${items === 'keys' ? 'mapping' : 'list'} start at the same column ${yamlSays}`,
    }
  }
  return { offset, message: original }
}
