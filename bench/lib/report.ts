import { median } from './stats'

/** One figure of one scenario: the service's value beside its peers' from the same run. */
export interface Figure {
  scenario: string
  metric: string
  unit: string
  better: 'higher' | 'lower'
  /** Median of the service's runs; null when the scenario was skipped. */
  service: number | null
  /** Median of each peer's runs. */
  peers: Record<string, number>
  /** Every run, service first. */
  runs: Record<string, number[]>
  target?: { text: string; met: boolean }
  note?: string
}

/**
 * A figure from per-system runs (key `service` plus peers), each reduced to its median.
 * @param target what the service's median must reach, given it and the peers' medians.
 */
export function figure(opts: {
  scenario: string
  metric: string
  unit: string
  better: 'higher' | 'lower'
  runs: Record<string, number[]>
  target?: (service: number, peers: Record<string, number>) => { text: string; met: boolean }
  note?: string
}): Figure {
  // A client reports a figure it could not take (nothing arrived in time) as null: keep it
  // as NaN, shown as '–' and never meeting a target; only a system that did not run is null.
  const runs = Object.fromEntries(
    Object.entries(opts.runs).map(([k, v]) => [k, v.map((x) => x ?? Number.NaN)])
  )
  const { service: serviceRuns = [], ...peerRuns } = runs
  const service = serviceRuns.length > 0 ? median(serviceRuns) : null
  const peers = Object.fromEntries(Object.entries(peerRuns).map(([k, v]) => [k, median(v)]))
  return {
    scenario: opts.scenario,
    metric: opts.metric,
    unit: opts.unit,
    better: opts.better,
    service,
    peers,
    runs,
    ...(opts.target && service !== null ? { target: opts.target(service, peers) } : {}),
    ...(opts.note ? { note: opts.note } : {}),
  }
}

/** What issue 19 allows the ledger to cost: LEDGER_MODE=all at least this share of off. */
const LEDGER_FLOOR = 0.85

/**
 * The LEDGER_MODE=all ÷ off row: the default build's runs beside the same build's with the
 * ledger off, taken alternately in the same run.
 */
export function ledgerFigure(scenario: string, unit: string, all: number[], off: number[]): Figure {
  return figure({
    scenario,
    metric: 'LEDGER_MODE=all ÷ off',
    unit,
    better: 'higher',
    runs: { service: all, 'LEDGER_MODE=off': off },
    target: (s, p) => ({
      text: `≥ ${LEDGER_FLOOR} × LEDGER_MODE=off`,
      met: s >= LEDGER_FLOOR * p['LEDGER_MODE=off']!,
    }),
  })
}

/** Machine and run facts printed above the table. */
export interface RunInfo {
  date: string
  mode: 'quick' | 'full'
  runsPerFigure: number
  machine: { nproc: number; cpu: string; memoryGiB: number; kernel: string }
  versions: Record<string, string>
  database: string
  /** What was built: a commit, or the working tree. */
  source: string
  durationS: number
  notes: string[]
}

export function formatNumber(v: number | null | undefined): string {
  if (v === null || v === undefined || Number.isNaN(v)) return '–'
  const abs = Math.abs(v)
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : 2
  return v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 })
}

const ratio = (service: number | null, peer: number) =>
  service === null || !peer || Number.isNaN(peer) || Number.isNaN(service)
    ? '–'
    : `${(service / peer).toFixed(2)}`

/** The Markdown table (with a header naming the date and machine). */
export function toMarkdown(info: RunInfo, figures: Figure[]): string {
  const lines = [
    `Run ${info.date} (${info.mode}, median of ${info.runsPerFigure} run${info.runsPerFigure > 1 ? 's' : ''} per figure unless noted, ${Math.round(info.durationS)} s in all) on ${info.machine.nproc} × ${info.machine.cpu}, ${info.machine.memoryGiB} GiB, Linux ${info.machine.kernel}; ${Object.entries(
      info.versions
    )
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}; metadata on ${info.database}; service built from the ${info.source}.`,
    '',
    '| scenario | figure | service | peers (same run) | service ÷ peer | target | met |',
    '| --- | --- | ---: | --- | --- | --- | :---: |',
  ]
  for (const f of figures) {
    const peers = Object.entries(f.peers)
    lines.push(
      [
        '',
        f.scenario,
        `${f.metric}${f.unit ? ` (${f.unit})` : ''}`,
        f.service === null ? 'skipped' : formatNumber(f.service),
        peers.map(([k, v]) => `${k} ${formatNumber(v)}`).join('<br>') || '–',
        peers.map(([k, v]) => `${ratio(f.service, v)} × ${k}`).join('<br>') || '–',
        f.target?.text ?? '–',
        f.target ? (f.target.met ? 'yes' : '**no**') : '–',
        '',
      ]
        .join(' | ')
        .trim()
    )
  }
  const notes = [
    ...info.notes,
    ...figures.filter((f) => f.note).map((f) => `${f.scenario}, ${f.metric}: ${f.note}`),
  ]
  if (notes.length > 0) lines.push('', ...notes.map((n) => `- ${n}`))
  return `${lines.join('\n')}\n`
}

const escapeXml = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

const COLORS: Record<string, string> = {
  service: '#2563eb',
  bare: '#9ca3af',
  bullmq: '#f59e0b',
}
const colorOf = (name: string) => COLORS[name] ?? '#10b981'

/**
 * A small SVG of two panels, the main throughput figures and the p99 latencies, each figure
 * a group of bars (the service and its peers) scaled to its largest, values printed.
 */
export function toSvg(info: RunInfo, figures: Figure[]): string {
  const charted = (f: Figure) => f.service !== null && Object.keys(f.peers).length > 0
  const panels = [
    {
      title: 'Throughput (higher is better)',
      figures: figures.filter((f) => charted(f) && f.metric === 'throughput'),
    },
    {
      title: 'p99 latency, ms (lower is better)',
      figures: figures.filter((f) => charted(f) && f.unit === 'ms' && f.metric.includes('p99')),
    },
  ].filter((p) => p.figures.length > 0)
  const barH = 14
  const left = 20
  const plotW = 460
  let y = 44
  const parts: string[] = []
  for (const panel of panels) {
    parts.push(`<text x="10" y="${y}" font-weight="bold">${escapeXml(panel.title)}</text>`)
    y += 8
    for (const f of panel.figures) {
      const bars = [['service', f.service!] as const, ...Object.entries(f.peers)].filter(([, v]) =>
        Number.isFinite(v)
      )
      const max = Math.max(...bars.map(([, v]) => v), 1e-9)
      y += 14
      parts.push(
        `<text x="${left}" y="${y}" font-size="11">${escapeXml(`${f.scenario}: ${f.metric}`)}</text>`
      )
      y += 4
      for (const [name, v] of bars) {
        const w = Math.max(1, (v / max) * plotW)
        parts.push(
          `<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${barH - 2}" fill="${colorOf(name)}"/>`,
          `<text x="${(left + w + 4).toFixed(1)}" y="${y + 10}" font-size="10">${escapeXml(`${name} ${formatNumber(v)}`)}</text>`
        )
        y += barH
      }
    }
    y += 24
  }
  const width = left + plotW + 170
  const title = `message-queue-service bench, ${info.date} (${info.mode}), ${info.machine.nproc} × ${info.machine.cpu}`
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" font-family="sans-serif" font-size="12">`,
    `<title>${escapeXml(title)}</title>`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="20" font-size="13">${escapeXml(title)}</text>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n')
}
