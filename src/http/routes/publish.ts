import { createRoute, z } from '@hono/zod-openapi'
import type { Context } from 'hono'
import { MqError } from '../../domain/errors'
import {
  type PublishDeps,
  type PublishInput,
  type PublishOutcome,
  publishBatch,
  publishMessage,
} from '../../domain/publish'
import { createSchedule, type ScheduleDeps } from '../../domain/schedules'
import type { AppEnv } from '../env'
import { requireScope } from '../middleware/auth'
import { createRouter, domainContext } from '../router'
import { commonErrors, errorResponse, json, jsonBody } from '../schemas/common'
import {
  BatchResultSchema,
  batchBody,
  clientMessageId,
  DelayedBody,
  MessageBody,
  PublishBody,
  PublishResultSchema,
  ScheduledBody,
  TopicParam,
} from '../schemas/publish'
import { ScheduleSchema } from '../schemas/schedules'
import { presentSchedule } from './schedules'

const tags = ['Publishing']

const publishErrors = {
  ...commonErrors,
  409: errorResponse('the queue is paused or archived (MQ_QUEUE_PAUSED)'),
  413: errorResponse('payload over MAX_MESSAGE_SIZE (MQ_MESSAGE_TOO_LARGE)'),
}

const singleResponses = {
  201: json(PublishResultSchema, 'stored'),
  200: json(PublishResultSchema, 'a duplicate of a message published within the dedup window'),
  ...publishErrors,
}

/**
 * The request's message in domain terms; `Idempotency-Key` stands in for a missing id. The
 * fields are named one by one rather than spread: the body may carry more (the queue, a
 * schedule's), which the domain does not read, and copying by spread cost more than naming.
 */
function toInput(body: z.infer<typeof MessageBody>, idempotencyKey?: string): PublishInput {
  return {
    payload: body.payload,
    headers: body.headers,
    key: body.key,
    messageId: body.messageId ?? idempotencyKey,
    correlationId: body.correlationId,
    traceId: body.traceId,
    ttlMs: body.ttlMs,
    delayMs: body.delayMs,
    deliverAt: body.deliverAt !== undefined ? new Date(body.deliverAt) : undefined,
  }
}

/** An outcome as the API shows it. */
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

/**
 * The `Idempotency-Key` header, held to a body `messageId`'s rules: a key that breaks them is
 * `400`, not ignored, or a client would believe its retries safe. Checked here rather than in
 * the routes' schemas so generated clients are not made to send a header object.
 */
function idempotencyKey(c: Context<AppEnv>): string | undefined {
  const header = c.req.header('idempotency-key')
  if (header === undefined) return undefined
  const checked = clientMessageId.safeParse(header)
  if (checked.success) return checked.data
  const message = checked.error.issues[0]?.message ?? 'invalid'
  throw new MqError('MQ_VALIDATION_FAILED', `Idempotency-Key: ${message}`, {
    issues: checked.error.issues.map((i) => ({
      path: 'idempotency-key',
      code: i.code,
      message: i.message,
    })),
  })
}

/** `/api/v1/mq/publish*` and `/api/v1/mq/topics/{name}/publish` */
export function createPublishRouter(
  deps: PublishDeps,
  opts: { maxBatchSize: number; schedules: ScheduleDeps }
) {
  const BatchBody = batchBody(opts.maxBatchSize)
  const delayed = createRoute({
    method: 'post',
    path: '/publish/delayed',
    tags,
    summary: 'Publish one message delivered no earlier than delayMs from now',
    middleware: [requireScope('mq:publish')] as const,
    request: { body: jsonBody(DelayedBody) },
    responses: singleResponses,
  })
  const scheduled = createRoute({
    method: 'post',
    path: '/publish/scheduled',
    tags,
    summary: 'Publish one message at deliverAt, or create a recurring schedule with cron',
    middleware: [requireScope('mq:publish')] as const,
    request: { body: jsonBody(ScheduledBody) },
    responses: {
      ...singleResponses,
      201: json(
        z.union([PublishResultSchema, ScheduleSchema]),
        'the scheduled message, or the schedule'
      ),
    },
  })
  const single = createRoute({
    method: 'post',
    path: '/publish',
    tags,
    summary: 'Publish one message',
    middleware: [requireScope('mq:publish')] as const,
    request: { body: jsonBody(PublishBody) },
    responses: singleResponses,
  })
  const batch = createRoute({
    method: 'post',
    path: '/publish/batch',
    tags,
    summary: 'Publish up to MAX_BATCH_SIZE messages to one queue; all or nothing on validation',
    middleware: [requireScope('mq:publish')] as const,
    request: { body: jsonBody(BatchBody) },
    responses: { 201: json(BatchResultSchema, 'stored, in input order'), ...publishErrors },
  })
  const topic = createRoute({
    method: 'post',
    path: '/topics/{name}/publish',
    tags,
    summary: 'Publish one message to the named topic (queue)',
    middleware: [requireScope('mq:publish')] as const,
    request: { params: TopicParam, body: jsonBody(MessageBody) },
    responses: singleResponses,
  })

  return createRouter()
    .openapi(single, async (c) => {
      const body = c.req.valid('json')
      const input = toInput(body, idempotencyKey(c))
      const outcome = await publishMessage(deps, domainContext(c), body.queue, input)
      return c.json(presentOutcome(outcome), outcome.duplicate ? 200 : 201)
    })
    .openapi(batch, async (c) => {
      const { queue, messages } = c.req.valid('json')
      const result = await publishBatch(
        deps,
        domainContext(c),
        queue,
        messages.map((m) => toInput(m))
      )
      return c.json(
        {
          ...result,
          results: result.results.map((r) => ({
            messageId: r.messageId,
            partition: r.partition,
            status: r.status,
            ...(r.duplicate ? { duplicate: true } : {}),
          })),
        },
        201
      )
    })
    .openapi(delayed, async (c) => {
      const body = c.req.valid('json')
      const input = toInput(body, idempotencyKey(c))
      const outcome = await publishMessage(deps, domainContext(c), body.queue, input)
      return c.json(presentOutcome(outcome), outcome.duplicate ? 200 : 201)
    })
    .openapi(scheduled, async (c) => {
      const body = c.req.valid('json')
      const { queue, cron, timezone, startAt, endAt, maxRuns } = body
      if (cron !== undefined) {
        const schedule = await createSchedule(opts.schedules, domainContext(c), queue, {
          cron,
          timezone: timezone ?? 'UTC',
          payload: body.payload,
          headers: body.headers ?? {},
          key: body.key ?? null,
          maxRuns: maxRuns ?? null,
          startAt: startAt ? new Date(startAt) : null,
          endAt: endAt ? new Date(endAt) : null,
        })
        return c.json(presentSchedule(opts.schedules, schedule), 201)
      }
      const input = toInput(body, idempotencyKey(c))
      const outcome = await publishMessage(deps, domainContext(c), queue, input)
      return c.json(presentOutcome(outcome), outcome.duplicate ? 200 : 201)
    })
    .openapi(topic, async (c) => {
      const input = toInput(c.req.valid('json'), idempotencyKey(c))
      const outcome = await publishMessage(deps, domainContext(c), c.req.valid('param').name, input)
      return c.json(presentOutcome(outcome), outcome.duplicate ? 200 : 201)
    })
}
