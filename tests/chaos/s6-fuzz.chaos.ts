import { expect, test } from 'bun:test'
import { fuzzRoutes } from '../helpers/fuzz'
import { testApp } from '../helpers/harness'
import { report } from './oracle'

/** RELIABILITY.md S6: 1,000 cases per route here (`bun run test` runs 200); FUZZ_RUNS for more. */
const RUNS = Number(process.env.FUZZ_RUNS ?? 1000)

test(`S6 fuzzing: ${RUNS} cases per route, no 5xx, every error in the envelope`, async () => {
  const started = performance.now()
  const reports = await fuzzRoutes(await testApp(), { runs: RUNS })
  const statuses: Record<number, number> = {}
  for (const r of reports) {
    for (const [status, n] of Object.entries(r.statuses)) {
      statuses[Number(status)] = (statuses[Number(status)] ?? 0) + n
    }
  }
  const failed = reports.filter((r) => r.failure)
  report('S6 fuzz', {
    routes: reports.length,
    requests: Object.values(statuses).reduce((a, b) => a + b, 0),
    '5xx': Object.entries(statuses).reduce((n, [s, c]) => n + (Number(s) >= 500 ? c : 0), 0),
    failedRoutes: failed.length,
    seconds: Math.round((performance.now() - started) / 1000),
  })
  expect(failed).toEqual([])
}, 1_800_000)
