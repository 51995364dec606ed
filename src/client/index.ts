import { createHmac, timingSafeEqual } from 'node:crypto'
import { type ClientResponse, hc, type InferRequestType, type InferResponseType } from 'hono/client'
import type { App } from '../app'

/** How the client proves itself: a bearer JWT, or a service token with the tenant it acts for. */
export type ClientAuth = { token: string } | { serviceToken: string; tenantId?: string }

export interface ClientOptions {
  auth: ClientAuth
  /** Another fetch (tests, proxies). */
  fetch?: typeof fetch
}

/** A non-2xx answer, with the contract's error body. */
export class MqClientError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId: string | null,
    readonly retryAfter?: number,
    readonly details?: Record<string, unknown>
  ) {
    super(message)
    this.name = 'MqClientError'
  }
}

async function failure(res: {
  status: number
  headers: Headers
  json(): Promise<unknown>
}): Promise<MqClientError> {
  const body = (await res.json().catch(() => ({}))) as {
    code?: string
    message?: string
    requestId?: string
    retryAfter?: number
    details?: Record<string, unknown>
  }
  return new MqClientError(
    res.status,
    body.code ?? 'MQ_INTERNAL',
    body.message ?? `HTTP ${res.status}`,
    body.requestId ?? res.headers.get('x-request-id'),
    body.retryAfter,
    body.details
  )
}

/** The body type of a typed call's 2xx answers. */
export type SuccessBody<R> =
  R extends ClientResponse<infer T, infer S, 'json'>
    ? `${S}` extends `2${string}`
      ? T
      : never
    : never

/** The body of a typed call's 2xx answer. @throws MqClientError for any other. */
async function ok<R extends ClientResponse<unknown, number, string>>(
  call: Promise<R>
): Promise<SuccessBody<R>> {
  const res = await call
  if (!res.ok) throw await failure(res)
  return (await res.json()) as SuccessBody<R>
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms)
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer)
        resolve()
      },
      { once: true }
    )
  })

type Mq = ReturnType<typeof hc<App>>['api']['v1']['mq']
type Sub = Mq['subscriptions'][':id']
type Message = Omit<InferRequestType<Mq['publish']['$post']>['json'], 'queue'>
type BatchMessage = InferRequestType<Mq['publish']['batch']['$post']>['json']['messages'][number]
type PullOptions = InferRequestType<Sub['pull']['$post']>['json']
type NewSubscription = InferRequestType<Mq['subscriptions']['$post']>['json']
type SubscribeOptions = Omit<
  NewSubscription,
  'queue' | 'consumerGroup' | 'consumerName' | 'subscriptionType'
> &
  Partial<Pick<NewSubscription, 'consumerName' | 'subscriptionType'>>
/** One message handed to a consumer. */
type Delivery = InferResponseType<Sub['pull']['$post'], 200>['messages'][number]

interface ConsumeOptions {
  signal?: AbortSignal
  max?: number
  /** Long-poll wait per pull (ms, at most 20000). */
  waitMs?: number
  /** Told of handler errors and retried failures. */
  onError?: (err: unknown) => void
}

/** The subscription `group`'s consumer already has on `queue`, or null. */
async function findSubscription(mq: Mq, queue: string, group: string, consumerName: string) {
  let cursor: string | undefined
  do {
    const page = await ok(mq.subscriptions.$get({ query: { queue, cursor } }))
    const found = page.items.find(
      (s) => s.consumerGroup === group && s.consumerName === consumerName
    )
    if (found) return found
    cursor = page.nextCursor ?? undefined
  } while (cursor)
  return null
}

/** Handles one pull's messages, then acks what was handled and nacks what threw. */
async function handleAll(
  client: Pick<MqClient, 'ack' | 'nack'>,
  subscriptionId: string,
  messages: Delivery[],
  handler: (message: Delivery) => unknown | Promise<unknown>,
  onError?: (err: unknown) => void
): Promise<void> {
  const done: string[] = []
  const failed: string[] = []
  for (const message of messages) {
    try {
      await handler(message)
      done.push(message.receipt)
    } catch (err) {
      onError?.(err)
      failed.push(message.receipt)
    }
  }
  // Settled even when aborting: what was handled should not come back.
  try {
    if (done.length > 0) await client.ack(subscriptionId, done)
    if (failed.length > 0) await client.nack(subscriptionId, failed)
  } catch (err) {
    // Unsettled deliveries come back after their visibility timeout.
    onError?.(err)
  }
}

/** The loop behind `client.consume` (see there). */
async function consumeLoop(
  client: Pick<MqClient, 'pull' | 'ack' | 'nack'>,
  subscriptionId: string,
  handler: (message: Delivery) => unknown | Promise<unknown>,
  opts: ConsumeOptions
): Promise<void> {
  const { signal } = opts
  let pause = 0
  while (!signal?.aborted) {
    let messages: Delivery[]
    try {
      const body = { max: opts.max ?? 10, waitMs: opts.waitMs ?? 20_000 }
      messages = (await client.pull(subscriptionId, body, signal)).messages
      pause = 0
    } catch (err) {
      if (signal?.aborted) return
      if (err instanceof MqClientError && err.status < 500 && err.status !== 429) throw err
      opts.onError?.(err)
      pause = Math.min(pause ? pause * 2 : 250, 5000)
      await sleep(pause, signal)
      continue
    }
    await handleAll(client, subscriptionId, messages, handler, opts.onError)
  }
}

/**
 * A small client over the typed `hono/client` one: publishing, pulling, acking, and a consume
 * loop. `api` is the full typed client for everything else.
 * @param baseUrl the service, e.g. `http://localhost:3010`.
 */
export function createClient(baseUrl: string, options: ClientOptions) {
  const auth = options.auth
  const headers: Record<string, string> =
    'token' in auth
      ? { authorization: `Bearer ${auth.token}` }
      : {
          'x-service-token': auth.serviceToken,
          ...(auth.tenantId ? { 'x-tenant-id': auth.tenantId } : {}),
        }
  const api = hc<App>(baseUrl, { headers, ...(options.fetch ? { fetch: options.fetch } : {}) })
  const mq = api.api.v1.mq
  const sub = mq.subscriptions[':id']

  const client = {
    api,

    /** Publishes one message to `queue`. */
    publish: (queue: string, message: Message) =>
      ok(mq.publish.$post({ json: { ...message, queue } })),

    /** Publishes up to MAX_BATCH_SIZE messages to `queue`, all or none on validation. */
    publishBatch: (queue: string, messages: BatchMessage[]) =>
      ok(mq.publish.batch.$post({ json: { queue, messages } })),

    /**
     * Subscribes `group` to `queue`: creates the subscription (a pulled `redis_consumer`, with
     * the consumer named after the group unless `options.consumerName` says otherwise), or
     * finds the one that consumer already has, so a consumer can call it at every start. An
     * existing subscription is returned as it is: `options` apply only when it is created.
     * @throws MqClientError for anything else, e.g. `MQ_QUEUE_NOT_FOUND`.
     */
    async subscribe(queue: string, group: string, options: SubscribeOptions = {}) {
      const consumerName = options.consumerName ?? group
      const json = {
        subscriptionType: 'redis_consumer' as const,
        ...options,
        queue,
        consumerGroup: group,
        consumerName,
      }
      try {
        return await ok(mq.subscriptions.$post({ json }))
      } catch (err) {
        if (!(err instanceof MqClientError) || err.code !== 'MQ_SUBSCRIPTION_EXISTS') throw err
        const found = await findSubscription(mq, queue, group, consumerName)
        if (found) return found
        throw err
      }
    },

    /** Pulls up to `max` messages, long polling up to `waitMs` for the first. */
    pull: (subscriptionId: string, body: PullOptions = {}, signal?: AbortSignal) =>
      ok(sub.pull.$post({ param: { id: subscriptionId }, json: body }, { init: { signal } })),

    ack: (subscriptionId: string, receipts: string[]) =>
      ok(sub.ack.$post({ param: { id: subscriptionId }, json: { receipts } })),

    nack: (subscriptionId: string, receipts: string[], opts: { delayMs?: number } = {}) =>
      ok(sub.nack.$post({ param: { id: subscriptionId }, json: { receipts, ...opts } })),

    /**
     * Pulls and handles messages until `signal` aborts: each message is acked when `handler`
     * resolves and nacked (retried with the subscription's backoff) when it throws. Outages and
     * 429/5xx answers are retried with a growing pause; other errors (a missing subscription,
     * bad credentials) end the loop by rejecting.
     */
    consume: (
      subscriptionId: string,
      handler: (message: Delivery) => unknown | Promise<unknown>,
      opts: ConsumeOptions = {}
    ): Promise<void> => consumeLoop(client, subscriptionId, handler, opts),
  }
  return client
}

/** The client `createClient` returns. */
export type MqClient = ReturnType<typeof createClient>

/**
 * Verifies a webhook push (Standard Webhooks): `webhook-signature` must hold a `v1,` HMAC-SHA256
 * of `${webhook-id}.${webhook-timestamp}.${body}` keyed with the base64 part of the
 * subscription's `whsec_` secret, and the timestamp must be within `toleranceS` of now (replays
 * of old pushes fail). Compared in constant time.
 * @param body the raw request body, exactly as received (not re-serialized JSON).
 * @returns whether the push is authentic and fresh.
 */
export function verifyWebhook(
  secret: string,
  headers: Headers | Record<string, string | undefined>,
  body: string | Uint8Array,
  opts: { toleranceS?: number; now?: number } = {}
): boolean {
  const get = (name: string) =>
    headers instanceof Headers
      ? headers.get(name)
      : Object.entries(headers).find(([k]) => k.toLowerCase() === name)?.[1]
  const id = get('webhook-id')
  const timestamp = get('webhook-timestamp')
  const signatures = get('webhook-signature')
  if (!id || !timestamp || !signatures || !/^\d{1,12}$/.test(timestamp)) return false
  const nowS = Math.floor((opts.now ?? Date.now()) / 1000)
  if (Math.abs(nowS - Number(timestamp)) > (opts.toleranceS ?? 300)) return false
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64')
  const expected = createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest()
  return signatures.split(' ').some((entry) => {
    const [version, signature] = entry.split(',')
    if (version !== 'v1' || !signature) return false
    const given = Buffer.from(signature, 'base64')
    return given.length === expected.length && timingSafeEqual(given, expected)
  })
}
