/** What a caller may do; `mq:admin` implies every other scope. */
export type Scope = 'mq:admin' | 'mq:publish' | 'mq:consume' | 'mq:read'

export const SCOPES: readonly Scope[] = ['mq:admin', 'mq:publish', 'mq:consume', 'mq:read']

/**
 * Who is calling: a user or app (JWT `sub`) or a platform service (`X-Service-Name`).
 * Matched against a queue's `allowedProducers` / `allowedConsumers`.
 */
export interface Principal {
  kind: 'user' | 'service'
  name: string | null
}

/** The tenant a request acts for and what it may do there; built only by the auth layer. */
export interface TenantContext {
  tenantId: string
  scopes: ReadonlySet<Scope>
  principal: Principal
}

/** What every domain verb receives: the tenant it is scoped to and the request it serves. */
export interface DomainContext {
  tenantId: string
  principal: Principal
  requestId: string
}
