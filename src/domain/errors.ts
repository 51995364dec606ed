/**
 * Every error the service answers with, by code (API.md "Errors"). The HTTP status of each is
 * the HTTP layer's business (`src/http/error-status.ts`); the domain names only what went wrong.
 */
export const MQ_ERROR_CODES = [
  'MQ_VALIDATION_FAILED',
  'MQ_INVALID_JSON',
  'MQ_UNAUTHORIZED',
  'MQ_FORBIDDEN',
  'MQ_QUEUE_NOT_FOUND',
  'MQ_SUBSCRIPTION_NOT_FOUND',
  'MQ_MESSAGE_NOT_FOUND',
  'MQ_SCHEDULE_NOT_FOUND',
  'MQ_NOT_FOUND',
  'MQ_QUEUE_EXISTS',
  'MQ_SUBSCRIPTION_EXISTS',
  'MQ_SUBSCRIPTION_PAUSED',
  'MQ_QUEUE_PAUSED',
  'MQ_MESSAGE_ALREADY_PUBLISHED',
  'MQ_MESSAGE_IN_FLIGHT',
  'MQ_MESSAGE_TOO_LARGE',
  'MQ_HEADERS_TOO_LARGE',
  'MQ_UNSUPPORTED_MEDIA_TYPE',
  'MQ_RATE_LIMITED',
  'MQ_QUEUE_FULL',
  'MQ_CONSUMER_ERROR',
  'MQ_INTERNAL',
  'MQ_PUBLISH_FAILED',
  'MQ_UNAVAILABLE',
] as const

export type MqErrorCode = (typeof MQ_ERROR_CODES)[number]

/**
 * The one error type of the domain: a contract code, a message safe to show the caller,
 * and optional details and retry hint (seconds). Domain verbs throw it; the HTTP layer
 * renders it.
 */
export class MqError extends Error {
  constructor(
    readonly code: MqErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
    readonly retryAfter?: number
  ) {
    super(message)
    this.name = 'MqError'
  }
}

type NotFoundCode = Extract<
  MqErrorCode,
  | 'MQ_QUEUE_NOT_FOUND'
  | 'MQ_SUBSCRIPTION_NOT_FOUND'
  | 'MQ_MESSAGE_NOT_FOUND'
  | 'MQ_SCHEDULE_NOT_FOUND'
>

/** The object the caller named does not exist for its tenant (or belongs to another one). */
export const notFound = (code: NotFoundCode, what: string, id: string) =>
  new MqError(code, `${what} '${id}' not found`)

/** What a store returned for `id`, or {@link notFound} when it returned nothing. */
export function found<T>(
  value: T | null | undefined,
  code: NotFoundCode,
  what: string,
  id: string
): T {
  if (value === null || value === undefined) throw notFound(code, what, id)
  return value
}

/** A backing store did not answer; the caller should retry after `retryAfter` seconds. */
export const unavailable = (what: string, retryAfter = 1) =>
  new MqError('MQ_UNAVAILABLE', `${what} is unavailable, retry later`, undefined, retryAfter)
