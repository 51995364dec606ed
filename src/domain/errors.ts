/**
 * Every error the service answers with, by code. The status of each is fixed by the API
 * contract (API.md "Errors"); only `src/http/errors.ts` turns these into HTTP answers.
 */
export const MQ_ERROR_STATUS = {
  MQ_VALIDATION_FAILED: 400,
  MQ_INVALID_JSON: 400,
  MQ_UNAUTHORIZED: 401,
  MQ_FORBIDDEN: 403,
  MQ_QUEUE_NOT_FOUND: 404,
  MQ_SUBSCRIPTION_NOT_FOUND: 404,
  MQ_MESSAGE_NOT_FOUND: 404,
  MQ_SCHEDULE_NOT_FOUND: 404,
  MQ_NOT_FOUND: 404,
  MQ_QUEUE_EXISTS: 409,
  MQ_SUBSCRIPTION_EXISTS: 409,
  MQ_SUBSCRIPTION_PAUSED: 409,
  MQ_QUEUE_PAUSED: 409,
  MQ_MESSAGE_ALREADY_PUBLISHED: 409,
  MQ_MESSAGE_TOO_LARGE: 413,
  MQ_HEADERS_TOO_LARGE: 431,
  MQ_UNSUPPORTED_MEDIA_TYPE: 415,
  MQ_RATE_LIMITED: 429,
  MQ_QUEUE_FULL: 429,
  MQ_CONSUMER_ERROR: 500,
  MQ_INTERNAL: 500,
  MQ_PUBLISH_FAILED: 503,
  MQ_UNAVAILABLE: 503,
} as const

export type MqErrorCode = keyof typeof MQ_ERROR_STATUS

/**
 * The one error type of the domain: a contract code, a message safe to show the caller,
 * and optional details and retry hint (seconds). Domain verbs throw it; the HTTP layer
 * renders it.
 */
export class MqError extends Error {
  readonly status: (typeof MQ_ERROR_STATUS)[MqErrorCode]

  constructor(
    readonly code: MqErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
    readonly retryAfter?: number
  ) {
    super(message)
    this.name = 'MqError'
    this.status = MQ_ERROR_STATUS[code]
  }
}

/** The object the caller named does not exist for its tenant (or belongs to another one). */
export const notFound = (
  code: Extract<
    MqErrorCode,
    | 'MQ_QUEUE_NOT_FOUND'
    | 'MQ_SUBSCRIPTION_NOT_FOUND'
    | 'MQ_MESSAGE_NOT_FOUND'
    | 'MQ_SCHEDULE_NOT_FOUND'
  >,
  what: string,
  id: string
) => new MqError(code, `${what} '${id}' not found`)

/** A backing store did not answer; the caller should retry after `retryAfter` seconds. */
export const unavailable = (what: string, retryAfter = 1) =>
  new MqError('MQ_UNAVAILABLE', `${what} is unavailable, retry later`, undefined, retryAfter)
