/**
 * A live time chart: uPlot drawing series of the history. Made once per set of lines, then only fed
 * new data (uPlot redraws in a few ms); resized with its box. Every chart shares one cursor, so that
 * hovering one shows the same moment on all.
 */
import { html } from 'htm/preact'
import { useEffect, useRef } from 'preact/hooks'
import uPlot from 'uplot'
import { DASH } from './format.js'
import type { Series } from './types.js'

export interface Line {
  readonly label: string
  readonly color: string
  readonly values: Series | undefined
  /** Shade the area under the line. */
  readonly fill?: boolean
}

export interface ChartProps {
  readonly title: string
  readonly time: readonly number[]
  readonly lines: readonly Line[]
  /** A value as the axis and the legend show it. */
  readonly format: (v: number) => string
  readonly height?: number
}

const AXIS = '#8b98a9'
const GRID = 'rgba(139, 152, 169, 0.12)'
const FONT = '11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif'

function dataOf(p: ChartProps): uPlot.AlignedData {
  const empty = () => p.time.map(() => null)
  return [p.time as number[], ...p.lines.map((l) => (l.values ?? empty()) as (number | null)[])]
}

function optionsOf(p: ChartProps, width: number): uPlot.Options {
  const axis = {
    stroke: AXIS,
    font: FONT,
    grid: { stroke: GRID, width: 1 },
    ticks: { stroke: GRID, width: 1, size: 4 },
  }
  return {
    width,
    height: p.height ?? 150,
    ms: 1,
    padding: [10, 12, 0, 0],
    cursor: { sync: { key: 'switchyard' }, drag: { x: false, y: false }, points: { size: 6 } },
    legend: { live: true },
    scales: {
      x: { time: true },
      y: { range: (_u, _min, max) => [0, max !== null && max > 0 ? max * 1.15 : 1] },
    },
    axes: [
      {
        ...axis,
        space: 80,
        values: (_u, splits) => splits.map((t) => new Date(t).toLocaleTimeString('en-GB', { hour12: false })),
      },
      { ...axis, size: 62, space: 28, values: (_u, splits) => splits.map((v) => p.format(v)) },
    ],
    series: [
      { value: '{HH}:{mm}:{ss}' },
      ...p.lines.map((l) => ({
        label: l.label,
        stroke: l.color,
        width: 1.5,
        ...(l.fill ? { fill: `${l.color}1f` } : {}),
        points: { show: false },
        // Away from the cursor, the legend shows the newest value.
        value: (u: uPlot, v: number | null, si: number, idx: number | null) => {
          const shown = idx === null || idx === undefined ? newest(u.data[si]) : v
          return shown === null || shown === undefined ? DASH : p.format(shown)
        },
      })),
    ],
  }
}

function newest(values: uPlot.AlignedData[number] | undefined): number | null {
  if (values === undefined) return null
  for (let i = values.length - 1; i >= 0; i--) {
    const v = values[i]
    if (v !== null && v !== undefined) return v
  }
  return null
}

export function Chart(p: ChartProps) {
  const box = useRef<HTMLDivElement>(null)
  const plot = useRef<uPlot | null>(null)
  const props = useRef(p)
  props.current = p
  const shape = p.lines.map((l) => `${l.label}\u0000${l.color}`).join('\u0001')
  // Made again only when the lines change (`shape`); new data goes in below.
  useEffect(() => {
    const el = box.current
    if (el === null) return
    const u = new uPlot(optionsOf(props.current, el.clientWidth || 300), dataOf(props.current), el)
    plot.current = u
    let width = el.clientWidth
    const resize = new ResizeObserver(() => {
      if (el.clientWidth === width || el.clientWidth === 0) return
      width = el.clientWidth
      u.setSize({ width, height: props.current.height ?? 150 })
    })
    resize.observe(el)
    return () => {
      resize.disconnect()
      u.destroy()
      plot.current = null
    }
  }, [shape])
  useEffect(() => {
    plot.current?.setData(dataOf(p))
  })
  return html`<figure class="chart">
    <figcaption>${p.title}</figcaption>
    <div class="plot" ref=${box}></div>
  </figure>`
}
