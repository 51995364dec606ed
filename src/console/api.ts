import { type ClientResponse, hc, type InferResponseType } from 'hono/client'
import type { App } from '../app'
import type { SuccessBody } from '../client'

/** How the operator signed in: a JWT, or the service token with the tenant it acts for. */
export type Credentials =
  | { kind: 'token'; token: string }
  | { kind: 'service'; serviceToken: string; tenantId: string }

// sessionStorage, not localStorage: the token lives as long as the tab and is never written
// to disk by the browser's profile.
const STORAGE_KEY = 'mq-console-credentials'

/** The credentials kept for this tab, if any. */
export function loadCredentials(): Credentials | null {
  const raw = sessionStorage.getItem(STORAGE_KEY)
  if (!raw) return null
  try {
    return JSON.parse(raw) as Credentials
  } catch {
    return null
  }
}

/** Keeps `credentials` for this tab; every API call after this sends them. */
export function saveCredentials(credentials: Credentials): void {
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(credentials))
}

/** Forgets the credentials (sign out, or a token the API refused). */
export function clearCredentials(): void {
  sessionStorage.removeItem(STORAGE_KEY)
}

function authHeaders(): Record<string, string> {
  const credentials = loadCredentials()
  if (!credentials) return {}
  return credentials.kind === 'token'
    ? { authorization: `Bearer ${credentials.token}` }
    : { 'x-service-token': credentials.serviceToken, 'x-tenant-id': credentials.tenantId }
}

/** The service's own typed API (`hono/client` over the app's routes), same origin. */
export const api = hc<App>(location.origin, { headers: authHeaders }).api.v1.mq

/** A non-2xx answer, with the contract's error code and message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string
  ) {
    super(message)
    this.name = 'ApiError'
  }
}

let unauthorized: () => void = () => {}

/** What to do when the API refuses the credentials (401): the console asks for new ones. */
export function onUnauthorized(handler: () => void): void {
  unauthorized = handler
}

/**
 * The body of a typed call's 2xx answer (undefined for a 204).
 * @throws ApiError for any other answer; a 401 also signs the operator out.
 */
export async function ok<R extends ClientResponse<unknown, number, string>>(
  call: Promise<R>
): Promise<SuccessBody<R>> {
  const res = await call
  if (res.ok) return (res.status === 204 ? undefined : await res.json()) as SuccessBody<R>
  const body = (await res.json().catch(() => ({}))) as { code?: string; message?: string }
  if (res.status === 401) unauthorized()
  throw new ApiError(res.status, body.code ?? 'MQ_INTERNAL', body.message ?? `HTTP ${res.status}`)
}

/** Every page of a cursor-paged list (the API's `items` and `nextCursor`), up to `maxPages`. */
export async function allPages<T>(
  page: (cursor: string | undefined) => Promise<{ items: T[]; nextCursor: string | null }>,
  maxPages = 10
): Promise<T[]> {
  const items: T[] = []
  let cursor: string | undefined
  for (let i = 0; i < maxPages; i++) {
    const next = await page(cursor)
    items.push(...next.items)
    if (!next.nextCursor) break
    cursor = next.nextCursor
  }
  return items
}

/** Every queue of the tenant (the API's pages followed). */
export const listAllQueues = () =>
  allPages((cursor) =>
    ok(api.queues.$get({ query: { limit: '1000', ...(cursor ? { cursor } : {}) } }))
  )

/** Every subscription of the tenant, or of one queue. */
export const listAllSubscriptions = (queue?: string) =>
  allPages((cursor) =>
    ok(
      api.subscriptions.$get({
        query: { limit: '1000', ...(queue ? { queue } : {}), ...(cursor ? { cursor } : {}) },
      })
    )
  )

export type Queue = InferResponseType<(typeof api.queues)[':name']['$get'], 200>
export type QueuedMessage = InferResponseType<
  (typeof api.queues)[':name']['messages']['$get'],
  200
>['items'][number]
export type Subscription = InferResponseType<(typeof api.subscriptions)[':id']['$get'], 200>
export type Schedule = InferResponseType<typeof api.schedules.$get, 200>['items'][number]
export type Summary = InferResponseType<typeof api.metrics.$get, 200>
export type TopicMetrics = InferResponseType<typeof api.metrics.topics.$get, 200>['items'][number]
export type ConsumerMetrics = InferResponseType<
  typeof api.metrics.consumers.$get,
  200
>['items'][number]
