import { createHmac } from 'node:crypto'
import type { Delivery } from '../domain/consume'
import { MAX_RETRY_DELAY_MS } from '../domain/retry'
import { WEBHOOK_DEFAULTS } from '../domain/subscription-admin'
import type { Subscription } from '../domain/subscriptions'
import { type Connector, pinnedFetch } from '../egress/pinned-fetch'
import { UnsafeWebhookUrlError, type WebhookUrlGuard } from '../egress/ssrf'
import type { Logger } from '../observability/logger'
import type { WebhookOutcome } from '../observability/metrics'

/** Headers a message or `handlerConfig.headers` may not set: ours, and those of the transport. */
const RESERVED_HEADER =
  /^(host|content-.*|transfer-encoding|connection|keep-alive|upgrade|te|trailer|expect|proxy-.*|webhook-.*|x-mq-.*)$/i

/**
 * The Standard Webhooks `webhook-id` of a message: its messageId with `.` (which the spec
 * forbids there: the signed content is `id.timestamp.body`) percent-encoded, so the id stays
 * stable across attempts and decodes back to the messageId. `%` is encoded too, for messages
 * stored before ids were held to letters, digits and `._:-/`: two ids never share an escape.
 */
export const webhookId = (messageId: string) =>
  messageId.replace(/[%.]/g, (c) => (c === '.' ? '%2E' : '%25'))

/** A webhook's `handlerConfig` with its defaults; `timeoutMs` capped by the operator's limit. */
export interface Endpoint {
  url: string
  method: string
  headers: Record<string, string>
  timeoutMs: number
}

export function endpointOf(sub: Subscription, maxTimeoutMs: number): Endpoint {
  const c = sub.handlerConfig
  return {
    url: String(c.url),
    method: typeof c.method === 'string' ? c.method : WEBHOOK_DEFAULTS.method,
    headers: (c.headers ?? {}) as Record<string, string>,
    timeoutMs: Math.min(
      typeof c.timeoutMs === 'number' ? c.timeoutMs : WEBHOOK_DEFAULTS.timeoutMs,
      maxTimeoutMs
    ),
  }
}

/** What an attempt came to. */
export type Outcome =
  | { kind: 'ack' }
  | { kind: 'retry'; reason: string; notBeforeMs?: number; statusCode?: number }
  | { kind: 'gone'; reason: string }

/**
 * `Retry-After` as milliseconds from now: delta-seconds or an HTTP date (RFC 9110 §10.2.3),
 * at most the longest retry delay. @returns null when absent or unreadable.
 */
export function retryAfterMs(value: string | null, now = Date.now()): number | null {
  if (!value) return null
  const trimmed = value.trim()
  const ms = /^\d+$/.test(trimmed) ? Number(trimmed) * 1000 : Date.parse(trimmed) - now
  return Number.isNaN(ms) ? null : Math.min(Math.max(0, ms), MAX_RETRY_DELAY_MS)
}

function judge(res: Response): Outcome {
  if (res.status >= 200 && res.status < 300) return { kind: 'ack' }
  if (res.status === 410) return { kind: 'gone', reason: 'endpoint answered 410 Gone' }
  const reason =
    res.status >= 300 && res.status < 400
      ? `endpoint answered ${res.status} (redirects are not followed)`
      : `endpoint answered ${res.status}`
  const wait =
    res.status === 429 || res.status === 503 ? retryAfterMs(res.headers.get('retry-after')) : null
  const statusCode = res.status
  return wait === null
    ? { kind: 'retry', reason, statusCode }
    : { kind: 'retry', reason, notBeforeMs: wait, statusCode }
}

/** Rejects with the signal's reason as soon as it aborts, whatever `promise` is doing. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason)
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}

/**
 * The Standard Webhooks signature: `v1,` + base64 HMAC-SHA256 of `id.timestamp.body`, keyed
 * with the base64-decoded part of the `whsec_` secret.
 */
export function signWebhook(secret: string, id: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64')
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`
}

/** Our headers win over `handlerConfig.headers`, which win over the message's own. */
function requestHeaders(
  sub: Subscription,
  d: Delivery,
  configured: Record<string, string>,
  body: string,
  secret: string
): Headers {
  const headers = new Headers()
  for (const source of [d.headers, configured]) {
    for (const [name, value] of Object.entries(source)) {
      if (RESERVED_HEADER.test(name)) continue
      try {
        headers.set(name, value)
      } catch {
        // A name or value HTTP cannot carry (a space, a line break): left out, not fatal.
      }
    }
  }
  const timestamp = Math.floor(Date.now() / 1000)
  headers.set('content-type', 'application/json')
  const id = webhookId(d.messageId)
  headers.set('webhook-id', id)
  headers.set('webhook-timestamp', String(timestamp))
  headers.set('webhook-signature', signWebhook(secret, id, timestamp, body))
  headers.set('x-mq-message-id', d.messageId)
  headers.set('x-mq-queue', sub.queue)
  headers.set('x-mq-delivery-count', String(d.deliveryCount))
  if (d.correlationId) headers.set('x-mq-correlation-id', d.correlationId)
  return headers
}

/** What one HTTP attempt needs besides the delivery. */
export interface RequestDeps {
  /** Validates a URL and resolves it to the one address to connect to, at every attempt. */
  guard: Pick<WebhookUrlGuard, 'check'>
  /** Opens the socket; Bun's fetch unless a test records connections. */
  connect: Connector
  /** Counts one push attempt by what it came to (Prometheus). */
  recordAttempt(outcome: WebhookOutcome): void
  logger: Logger
}

/** One attempt of one delivery. `signingSecret` is called only once the request is built. */
export interface Attempt {
  sub: Subscription
  delivery: Delivery
  endpoint: Endpoint
  signingSecret(): string
  /** Aborts the attempt (the worker stopping); then it comes to nothing at all. */
  abort: AbortSignal
}

/**
 * Sends one delivery to its endpoint and classifies the answer. @returns null when `abort`
 * ended it: the delivery is then left unsettled, to be delivered again.
 */
export async function attemptDelivery(deps: RequestDeps, a: Attempt): Promise<Outcome | null> {
  const { sub, delivery: d, endpoint } = a
  // One deadline for the whole attempt, resolving the name included.
  const signal = AbortSignal.any([AbortSignal.timeout(endpoint.timeoutMs), a.abort])
  try {
    // Checked again at every attempt: what the name resolves to may have changed.
    const target = await abortable(deps.guard.check(endpoint.url), signal)
    const body = JSON.stringify(d.payload)
    const headers = requestHeaders(sub, d, endpoint.headers, body, a.signingSecret())
    const res = await pinnedFetch(
      target,
      { method: endpoint.method, headers, body, signal },
      deps.connect
    )
    // The answer's body is never needed; not reading it keeps a huge one out of memory.
    void res.body?.cancel().catch(() => {})
    const outcome = judge(res)
    deps.recordAttempt(outcome.kind === 'ack' ? 'success' : 'http_error')
    return outcome
  } catch (err) {
    if (a.abort.aborted) return null
    const timedOut = (err as Error).name === 'TimeoutError'
    deps.recordAttempt(
      timedOut ? 'timeout' : err instanceof UnsafeWebhookUrlError ? 'blocked' : 'network_error'
    )
    if (err instanceof UnsafeWebhookUrlError) {
      deps.logger.debug({ subscriptionId: sub.id, detail: err.detail }, 'webhook target refused')
    }
    const reason = timedOut ? `no answer within ${endpoint.timeoutMs} ms` : (err as Error).message
    return { kind: 'retry', reason }
  }
}
