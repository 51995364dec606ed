import { h, svg } from './dom'

/** Points of one line: `[time ms, value]`, oldest first. */
export type Points = Array<[number, number]>

/** The stretch of time a chart spans, in ms since the epoch. */
export interface TimeSpan {
  from: number
  to: number
}

/** One line of a chart; `style` picks its colour and dash (series-0, series-1, …) in the CSS. */
export interface Series {
  name: string
  style: number
  points: Points
}

/** The largest value of `series` rounded up to 1, 2 or 5 × a power of ten (at least `floor`). */
function niceMax(series: Points[], floor: number): number {
  const max = Math.max(floor, ...series.flatMap((points) => points.map(([, v]) => v)))
  const magnitude = 10 ** Math.floor(Math.log10(max))
  return ([1, 2, 5, 10].find((m) => m * magnitude >= max) ?? 10) * magnitude
}

/** The `points` attribute of a polyline for `points` in a box of `width` × `height`. */
function path(
  points: Points,
  box: { x: number; y: number; width: number; height: number },
  span: TimeSpan,
  max: number
) {
  return points
    .map(([t, v]) => {
      const x = box.x + ((t - span.from) / (span.to - span.from)) * box.width
      const y = box.y + box.height - (v / max) * box.height
      return `${x.toFixed(1)},${y.toFixed(1)}`
    })
    .join(' ')
}

/**
 * A small line without axes for a table cell, over `span`. Its accessible name is `label` with
 * the latest and highest values.
 */
export function sparkline(
  points: Points,
  opts: { label: string; span: TimeSpan; format: (v: number) => string }
): SVGSVGElement {
  const width = 96
  const height = 24
  const max = niceMax([points], 0.1)
  const latest = points.at(-1)?.[1] ?? 0
  const peak = Math.max(0, ...points.map(([, v]) => v))
  return svg(
    'svg',
    {
      class: 'sparkline',
      viewBox: `0 0 ${width} ${height}`,
      width,
      height,
      role: 'img',
      'aria-label': `${opts.label}: now ${opts.format(latest)}, peak ${opts.format(peak)}`,
    },
    svg('line', { class: 'baseline', x1: 0, x2: width, y1: height - 0.5, y2: height - 0.5 }),
    points.length > 0 &&
      svg('polyline', {
        class: 'series-0',
        points: path(points, { x: 0, y: 1, width, height: height - 2 }, opts.span, max),
      })
  )
}

const clock = new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit' })

/**
 * A line chart of `series` over `span`, with a value axis, a clock axis (a tick a minute, or
 * every five past five minutes) and a legend giving each line's latest value. Screen readers
 * get the title and the latest values as the image's name.
 */
export function lineChart(opts: {
  title: string
  series: Series[]
  span: TimeSpan
  format: (v: number) => string
}): HTMLElement {
  const width = 640
  const height = 220
  const box = { x: 64, y: 10, width: width - 64 - 12, height: height - 10 - 28 }
  const { from, to } = opts.span
  const max = niceMax(
    opts.series.map((s) => s.points),
    1
  )
  const grid = [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const y = box.y + box.height - f * box.height
    return svg(
      'g',
      null,
      svg('line', { class: 'grid', x1: box.x, x2: box.x + box.width, y1: y, y2: y }),
      svg(
        'text',
        { class: 'axis', x: box.x - 8, y: y + 4, 'text-anchor': 'end' },
        opts.format(f * max)
      )
    )
  })
  const tickMs = (to - from > 5 * 60_000 ? 5 : 1) * 60_000
  const ticks: SVGElement[] = []
  for (let t = Math.ceil(from / tickMs) * tickMs; t <= to; t += tickMs) {
    const x = box.x + ((t - from) / (to - from)) * box.width
    ticks.push(
      svg('line', { class: 'grid', x1: x, x2: x, y1: box.y, y2: box.y + box.height }),
      svg('text', { class: 'axis', x, y: height - 8, 'text-anchor': 'middle' }, clock.format(t))
    )
  }
  const latest = (s: Series) => opts.format(s.points.at(-1)?.[1] ?? 0)
  const summary = opts.series.map((s) => `${s.name} ${latest(s)}`).join(', ')
  return h(
    'figure',
    { class: 'chart' },
    h('figcaption', null, opts.title),
    svg(
      'svg',
      {
        viewBox: `0 0 ${width} ${height}`,
        role: 'img',
        'aria-label': `${opts.title}, latest: ${summary}`,
      },
      ...grid,
      ...ticks,
      ...opts.series.map((s) =>
        svg('polyline', {
          class: `series-${s.style}`,
          points: path(s.points, box, opts.span, max),
        })
      )
    ),
    h(
      'ul',
      { class: 'legend' },
      ...opts.series.map((s) =>
        h(
          'li',
          null,
          svg(
            'svg',
            { class: 'swatch', viewBox: '0 0 24 8', width: 24, height: 8, 'aria-hidden': 'true' },
            svg('line', { class: `series-${s.style}`, x1: 0, x2: 24, y1: 4, y2: 4 })
          ),
          `${s.name} `,
          h('strong', null, latest(s))
        )
      )
    )
  )
}

/**
 * Horizontal bars for a few counts (a subscription's delivery outcomes), each labelled with
 * its figure, so the bars are decoration and the numbers carry the meaning.
 */
export function bars(items: Array<{ name: string; value: number; style: number }>): HTMLElement {
  const max = Math.max(1, ...items.map((i) => i.value))
  return h(
    'dl',
    { class: 'bars' },
    ...items.flatMap((item) => [
      h('dt', null, item.name),
      h(
        'dd',
        null,
        svg(
          'svg',
          { viewBox: '0 0 200 12', width: 200, height: 12, 'aria-hidden': 'true' },
          svg('rect', {
            class: `bar-${item.style}`,
            x: 0,
            y: 0,
            height: 12,
            width: Math.max(1, (item.value / max) * 200),
          })
        ),
        ` ${item.value.toLocaleString('en')}`
      ),
    ])
  )
}
