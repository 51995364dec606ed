import { join } from 'node:path'
import type { Context } from '../lib/context'
import { BENCH_DIR, type ServiceEnv, startServer, startService } from '../lib/infra'
import { type Figure, figure } from '../lib/report'

/**
 * Start-up of the compiled service to its first healthy answer, on a database already
 * migrated (a restart, the everyday case); the first start, which applies the migrations, is
 * measured once before (`firstStartMs`). The peers are started the way they run: `bun` on
 * their source.
 */
export async function startup(
  ctx: Pick<Context, 'plan' | 'work'> & { redisUrls: { bare: string; bullmq: string } },
  service: ServiceEnv,
  firstStartMs: number
): Promise<Figure[]> {
  const runs: Record<'service' | 'bare' | 'bullmq', number[]> = {
    service: [],
    bare: [],
    bullmq: [],
  }
  for (let i = 0; i < Math.max(3, ctx.plan.runs); i++) {
    const s = await startService(service, join(ctx.work, `startup-service-${i}.log`))
    runs.service.push(s.startMs)
    await s.stop()
    for (const peer of ['bare', 'bullmq'] as const) {
      const p = await startServer(
        peer,
        ['bun', join(BENCH_DIR, 'peers', `${peer}.ts`)],
        { REDIS_URL: ctx.redisUrls[peer] },
        '/health',
        join(ctx.work, `startup-${peer}-${i}.log`)
      )
      runs[peer].push(p.startMs)
      await p.stop()
    }
  }
  return [
    figure({
      scenario: 'start-up to healthy',
      metric: 'time',
      unit: 'ms',
      better: 'lower',
      runs,
      target: (s) => ({ text: '≤ 1,500 ms', met: s <= 1500 }),
      note: `median of ${runs.service.length} restarts of dist/mq on a migrated database; its first start (migrations applied) took ${Math.round(firstStartMs)} ms`,
    }),
  ]
}
