import type { Context } from 'hono'
import { HTTPException } from 'hono/http-exception'
import { ReplyError } from 'ioredis'
import { MaxRetriesPerRequestError } from 'ioredis/built/errors'
import ClusterAllFailedError from 'ioredis/built/errors/ClusterAllFailedError'
import { isPostgresUnavailable } from '../db/sql-state'
import { MqError, type MqErrorCode } from '../domain/errors'
import type { Logger } from '../observability/logger'
import type { AppEnv } from './env'
import { ERROR_STATUS } from './error-status'

/** The contract's error body (API.md "Errors"). */
export interface ErrorBody {
  code: MqErrorCode
  message: string
  details?: Record<string, unknown>
  retryAfter?: number
  requestId: string
}

/** Renders an MqError in the contract's flat shape, with `Retry-After` when it has a hint. */
export function renderError(c: Context<AppEnv>, err: MqError): Response {
  const body: ErrorBody = {
    code: err.code,
    message: err.message,
    ...(err.details ? { details: err.details } : {}),
    ...(err.retryAfter !== undefined ? { retryAfter: err.retryAfter } : {}),
    requestId: c.get('requestId') ?? '',
  }
  if (err.retryAfter !== undefined) c.header('Retry-After', String(Math.ceil(err.retryAfter)))
  return c.json(body, ERROR_STATUS[err.code])
}

const HTTP_EXCEPTION_CODES: Partial<Record<number, MqErrorCode>> = {
  // Hono's JSON validator throws 400 only for a body it cannot parse.
  400: 'MQ_INVALID_JSON',
  401: 'MQ_UNAUTHORIZED',
  403: 'MQ_FORBIDDEN',
  404: 'MQ_NOT_FOUND',
  413: 'MQ_MESSAGE_TOO_LARGE',
  415: 'MQ_UNSUPPORTED_MEDIA_TYPE',
  429: 'MQ_RATE_LIMITED',
  503: 'MQ_UNAVAILABLE',
}

const HTTP_EXCEPTION_MESSAGES: Partial<Record<MqErrorCode, string>> = {
  MQ_INVALID_JSON: 'request body is not valid JSON',
  MQ_MESSAGE_TOO_LARGE: 'request body is too large',
  MQ_UNSUPPORTED_MEDIA_TYPE: 'request body must be application/json',
}

/**
 * Codes of a connection that failed or went away: the OS's errno (through Node's and Bun's
 * sockets) and postgres.js's own connection codes.
 */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'CONNECT_TIMEOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
])

/**
 * ioredis rejects commands it cannot send with plain Errors that carry no code; these are its
 * exact messages (a fail-fast client offline, a closed connection, `commandTimeout`, a cluster
 * with no reachable node), compared whole.
 */
const IOREDIS_OFFLINE = new Set([
  "Stream isn't writeable and enableOfflineQueue options is false",
  "Cluster isn't ready and enableOfflineQueue options is false",
  'Connection is closed.',
  'Command timed out',
  'None of startup nodes is available',
])

/** Redis error replies (their first word is the code) of a server that cannot serve yet. */
const REDIS_NOT_READY = /^(LOADING|MASTERDOWN|CLUSTERDOWN|TRYAGAIN) /

function isOutage(err: Error): boolean {
  const code = (err as { code?: unknown }).code
  if (typeof code === 'string' && CONNECTION_CODES.has(code)) return true
  if (isPostgresUnavailable(err)) return true
  if (err instanceof MaxRetriesPerRequestError || err instanceof ClusterAllFailedError) return true
  if (err instanceof ReplyError && REDIS_NOT_READY.test(err.message)) return true
  return IOREDIS_OFFLINE.has(err.message)
}

/**
 * Errors from a backing store that is down or unreachable, as ioredis, postgres.js, PostgreSQL
 * and the OS report them: by errno, driver code, SQLSTATE or error class, never by the words of
 * a message a driver may reword. Such a failure is the service's, not the caller's: 503 with a
 * retry hint. drizzle wraps driver errors in a DrizzleQueryError, so the cause chain is searched.
 */
export function isStoreUnavailable(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (isOutage(e)) return true
  }
  return false
}

/**
 * The SQLSTATE of a value PostgreSQL refused to store or compare (class 22, "data exception": a
 * NUL character in text or JSON, a number past a column's range), else null. Every such value
 * came from the request, so the caller is told, rather than given a 500.
 */
function refusedByStore(err: unknown): string | null {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string' && /^22[0-9A-Z]{3}$/.test(code)) return code
  }
  return null
}

/**
 * The root error handler, in four tiers: our own errors as they are; Hono's HTTP exceptions
 * (bad JSON, body limit, media type) mapped to contract codes; store outages as 503 and values
 * PostgreSQL refuses as 400; anything else logged with its stack and answered as a generic 500.
 */
export function createErrorHandler(logger: Logger) {
  return (err: Error, c: Context<AppEnv>): Response => {
    if (err instanceof MqError) return renderError(c, err)
    if (err instanceof HTTPException) {
      const code =
        HTTP_EXCEPTION_CODES[err.status] ??
        (err.status >= 500 ? 'MQ_INTERNAL' : 'MQ_VALIDATION_FAILED')
      const message = HTTP_EXCEPTION_MESSAGES[code] ?? err.message
      return renderError(c, new MqError(code, message))
    }
    const log = logger.child({
      requestId: c.get('requestId'),
      tenantId: c.get('tenant')?.tenantId,
      route: c.req.routePath,
    })
    if (isStoreUnavailable(err)) {
      log.warn({ err: err.message }, 'backing store unavailable')
      return renderError(
        c,
        new MqError('MQ_UNAVAILABLE', 'a backing store is unavailable, retry later', undefined, 1)
      )
    }
    const refused = refusedByStore(err)
    if (refused) {
      // The code only: the driver's message repeats the query's parameters, request data.
      log.warn({ sqlstate: refused }, 'a request value was refused by PostgreSQL')
      return renderError(
        c,
        new MqError(
          'MQ_VALIDATION_FAILED',
          'a value cannot be stored: out of range, or holding a character such as NUL'
        )
      )
    }
    log.error({ err }, 'unhandled error')
    return renderError(c, new MqError('MQ_INTERNAL', 'internal error'))
  }
}

/** Unknown routes: the contract's 404 body rather than Hono's plain text. */
export function notFoundHandler(c: Context<AppEnv>): Response {
  return renderError(c, new MqError('MQ_NOT_FOUND', `no route for ${c.req.method} ${c.req.path}`))
}
