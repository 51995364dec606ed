import { type RouteConfig, z } from '@hono/zod-openapi'
import type { Context } from 'hono'
import { MqError } from '../../domain/errors'
import {
  type PublishDeps,
  type PublishInput,
  publishBatch,
  publishMessage,
} from '../../domain/publish'
import { createSchedule, type ScheduleDeps } from '../../domain/schedules'
import type { AppEnv } from '../env'
import { presentBatch, presentSchedule, publishedAnswer } from '../presenters'
import { routes } from '../route'
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

const route = routes('Publishing')

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

/** A route that publishes one message: what it answers is the same whatever the path. */
const publishOne = <P extends string, R extends RouteConfig['request']>(
  path: P,
  summary: string,
  request: R
) => route('post', path, 'mq:publish', { summary, request, responses: singleResponses })

const delayed = publishOne(
  '/publish/delayed',
  'Publish one message delivered no earlier than delayMs from now',
  { body: jsonBody(DelayedBody) }
)
const scheduled = route('post', '/publish/scheduled', 'mq:publish', {
  summary: 'Publish one message at deliverAt, or create a recurring schedule with cron',
  request: { body: jsonBody(ScheduledBody) },
  responses: {
    ...singleResponses,
    201: json(
      z.union([PublishResultSchema, ScheduleSchema]),
      'the scheduled message, or the schedule'
    ),
  },
})
const single = publishOne('/publish', 'Publish one message', { body: jsonBody(PublishBody) })
const topic = publishOne(
  '/topics/{name}/publish',
  'Publish one message to the named topic (queue)',
  { params: TopicParam, body: jsonBody(MessageBody) }
)
const batchRoute = (maxBatchSize: number) =>
  route('post', '/publish/batch', 'mq:publish', {
    summary: 'Publish up to MAX_BATCH_SIZE messages to one queue; all or nothing on validation',
    request: { body: jsonBody(batchBody(maxBatchSize)) },
    responses: { 201: json(BatchResultSchema, 'stored, in input order'), ...publishErrors },
  })

/** Creates the recurring schedule a `cron` in `/publish/scheduled` asks for. */
function scheduleFrom(
  deps: ScheduleDeps,
  c: Context<AppEnv>,
  body: z.infer<typeof ScheduledBody> & { cron: string }
) {
  return createSchedule(deps, domainContext(c), body.queue, {
    cron: body.cron,
    timezone: body.timezone ?? 'UTC',
    payload: body.payload,
    headers: body.headers ?? {},
    key: body.key ?? null,
    maxRuns: body.maxRuns ?? null,
    startAt: body.startAt ? new Date(body.startAt) : null,
    endAt: body.endAt ? new Date(body.endAt) : null,
  })
}

/** `/api/v1/mq/publish*` and `/api/v1/mq/topics/{name}/publish` */
export function createPublishRouter(
  deps: PublishDeps,
  opts: { maxBatchSize: number; schedules: ScheduleDeps }
) {
  /** Every single-message route: publish, delayed, scheduled at a time, and to a topic. */
  const publishOne = async (
    c: Context<AppEnv>,
    queue: string,
    body: z.infer<typeof MessageBody>
  ) => {
    const input = toInput(body, idempotencyKey(c))
    return publishedAnswer(c, await publishMessage(deps, domainContext(c), queue, input))
  }

  return createRouter()
    .openapi(single, (c) => publishOne(c, c.req.valid('json').queue, c.req.valid('json')))
    .openapi(batchRoute(opts.maxBatchSize), async (c) => {
      const { queue, messages } = c.req.valid('json')
      const inputs = messages.map((m) => toInput(m))
      return c.json(presentBatch(await publishBatch(deps, domainContext(c), queue, inputs)), 201)
    })
    .openapi(delayed, (c) => publishOne(c, c.req.valid('json').queue, c.req.valid('json')))
    .openapi(scheduled, async (c) => {
      const body = c.req.valid('json')
      const { cron } = body
      if (cron === undefined) return publishOne(c, body.queue, body)
      const schedule = await scheduleFrom(opts.schedules, c, { ...body, cron })
      return c.json(presentSchedule(opts.schedules, schedule), 201)
    })
    .openapi(topic, (c) => publishOne(c, c.req.valid('param').name, c.req.valid('json')))
}
