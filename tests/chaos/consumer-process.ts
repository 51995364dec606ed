/**
 * A consumer process for the tests that `kill -9` consumers (R1, the soak): pull consumers
 * over HTTP on the subscriptions named in `CHAOS_CONSUMER` (JSON, see {@link Config}). Every
 * delivery is written to stdout as a line `D <json>` before it is handled, every settled
 * batch as `S <json>`, both with synchronous writes so a line written is a line the test
 * reads even when the process is killed right after. SIGTERM stops it gracefully: what it
 * holds is handled and acknowledged first.
 */
import { writeSync } from 'node:fs'
import { Consumer, MqClient } from './client'

/** What the test passes in `CHAOS_CONSUMER`. */
export interface Config {
  baseUrl: string
  name: string
  /** Bearer token per tenant. */
  tokens: Record<string, string>
  subscriptions: Array<{ tenant: string; subscriptionId: string }>
  processingMs: [number, number]
  max: number
  waitMs: number
  visibilityTimeoutMs: number
}

const config = JSON.parse(process.env.CHAOS_CONSUMER ?? '{}') as Config
const client = new MqClient(
  () => config.baseUrl,
  async (tenant) => config.tokens[tenant] ?? ''
)
const line = (kind: 'D' | 'S', value: unknown) => writeSync(1, `${kind} ${JSON.stringify(value)}\n`)

const consumers = config.subscriptions.map((s) =>
  new Consumer({
    client,
    tenant: s.tenant,
    subscriptionId: s.subscriptionId,
    name: config.name,
    max: config.max,
    waitMs: config.waitMs,
    visibilityTimeoutMs: config.visibilityTimeoutMs,
    processingMs: config.processingMs,
    onDelivery: (record) => line('D', record),
    onSettled: (ids, verdict) => line('S', { ids, verdict }),
  }).start()
)

process.once('SIGTERM', async () => {
  await Promise.all(consumers.map((c) => c.stop()))
  process.exit(0)
})
