// A marked section of a generated Markdown file, so that two generators can share one file: the
// text from a begin marker to its end marker, both included, is owned by one of them and carried
// over verbatim by the other.

/** The section from `begin` to `end` (markers included), or undefined when either is missing. */
export function extractSection(text: string, begin: string, end: string): string | undefined {
  const from = text.indexOf(begin)
  const to = text.indexOf(end, from)
  return from < 0 || to < 0 ? undefined : text.slice(from, to + end.length)
}

/**
 * `text` with the section from `begin` to `end` replaced by `section` (which carries the markers);
 * `fallback(text, section)` decides where it goes when `text` has no such section yet.
 */
export function replaceSection(
  text: string,
  begin: string,
  end: string,
  section: string,
  fallback: (text: string, section: string) => string,
): string {
  const from = text.indexOf(begin)
  const to = text.indexOf(end, from)
  if (from < 0 || to < 0) return fallback(text, section)
  return text.slice(0, from) + section + text.slice(to + end.length)
}
