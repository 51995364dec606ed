import type { z } from '@hono/zod-openapi'
import type { Context } from 'hono'
import type { Delivery } from '../domain/consume'
import type { getMessage, MessageView } from '../domain/inspect'
import type { PublishOutcome, publishBatch } from '../domain/publish'
import type { Queue, QueueStats } from '../domain/queues'
import { type Schedule, type ScheduleDeps, schedulePayload } from '../domain/schedules'
import type { SubscriptionStats } from '../domain/subscription-admin'
import { deadLetterQueueOf, type Subscription } from '../domain/subscriptions'
import type { AppEnv } from './env'
import type { PublishResultSchema } from './schemas/publish'
import type { MessageFilterSchema } from './schemas/subscriptions'

/**
 * How the API shows each domain object: no tenant ids or sealed secrets, times as ISO strings.
 * One module, so a route shows another resource's objects without importing its router.
 */

const iso = (d: Date | null) => d?.toISOString() ?? null

/** A queue: no tenant id. */
export function presentQueue(queue: Queue & { stats?: QueueStats }) {
  const { tenantId: _tenantId, createdAt, updatedAt, ...rest } = queue
  return { ...rest, createdAt: createdAt.toISOString(), updatedAt: updatedAt.toISOString() }
}

/** A schedule: payload in clear. */
export function presentSchedule(deps: Pick<ScheduleDeps, 'cipher'>, s: Schedule) {
  return {
    id: s.id,
    queue: s.queue,
    cron: s.cron,
    timezone: s.timezone,
    payload: schedulePayload(deps, s),
    headers: s.headers,
    key: s.key,
    status: s.status,
    nextRunAt: iso(s.nextRunAt),
    lastRunAt: iso(s.lastRunAt),
    runs: s.runs,
    maxRuns: s.maxRuns,
    startAt: iso(s.startAt),
    endAt: iso(s.endAt),
    createdAt: s.createdAt.toISOString(),
  }
}

/** A subscription: no tenant or queue id, no sealed secret, and the dead-letter queue it will really use. */
export function presentSubscription(sub: Subscription & { stats?: SubscriptionStats }) {
  const {
    tenantId: _tenantId,
    queueId: _queueId,
    signingSecret: _sealed,
    createdAt,
    updatedAt,
    lastConsumedAt,
    stats,
    ...rest
  } = sub
  const flow = stats?.flow && { ...stats.flow, pausedUntil: iso(stats.flow.pausedUntil) }
  return {
    ...rest,
    ...(stats && { stats: { ...stats, ...(flow && { flow }) } }),
    deadLetterQueue: deadLetterQueueOf(sub),
    // Stored filters came through this schema; the domain type is only wider (`eq: unknown`).
    messageFilter: sub.messageFilter as z.infer<typeof MessageFilterSchema> | null,
    createdAt: createdAt.toISOString(),
    updatedAt: updatedAt.toISOString(),
    lastConsumedAt: lastConsumedAt?.toISOString() ?? null,
  }
}

/** A message as a peek lists it. */
export const presentMessage = <T extends MessageView>(m: T) => ({
  ...m,
  publishedAt: m.publishedAt.toISOString(),
  expiresAt: m.expiresAt?.toISOString() ?? null,
})

/** A message with its delivery attempts. */
export const presentMessageRecord = (m: Awaited<ReturnType<typeof getMessage>>) => ({
  ...presentMessage(m),
  deliverAt: m.deliverAt?.toISOString() ?? null,
  attempts: m.attempts.map((a) => ({
    ...a,
    at: a.at.toISOString(),
    nextRetryAt: a.nextRetryAt?.toISOString() ?? null,
  })),
})

/** A delivery from a pull. */
export const presentDelivery = (d: Delivery) => ({ ...d, publishedAt: d.publishedAt.toISOString() })

/** One publish's outcome. */
export function presentOutcome(o: PublishOutcome & { queue: string }) {
  const shown: z.infer<typeof PublishResultSchema> = {
    messageId: o.messageId,
    queue: o.queue,
    partition: o.partition,
    status: o.status,
    publishedAt: o.publishedAt.toISOString(),
  }
  if (o.deliverAt) shown.deliverAt = o.deliverAt.toISOString()
  if (o.duplicate) shown.duplicate = true
  return shown
}

/** The answer to one publish: 201 when stored, 200 for a duplicate within the dedup window. */
export const publishedAnswer = (c: Context<AppEnv>, o: PublishOutcome & { queue: string }) =>
  c.json(presentOutcome(o), o.duplicate ? 200 : 201)

/** A batch's outcome, in input order. */
export const presentBatch = (result: Awaited<ReturnType<typeof publishBatch>>) => ({
  ...result,
  results: result.results.map((r) => ({
    messageId: r.messageId,
    partition: r.partition,
    status: r.status,
    ...(r.duplicate ? { duplicate: true } : {}),
  })),
})
