import type { TenantContext } from '../domain/context'

/**
 * The verified caller. `service` is a platform service that named no tenant: it may use only
 * the all-tenant views (metrics, status, internal API), never a tenant's objects.
 */
export type Caller = { kind: 'tenant'; tenant: TenantContext } | { kind: 'service' }

/** The one Hono environment type every router and middleware shares. */
export interface AppEnv {
  Variables: {
    requestId: string
    caller: Caller
    tenant: TenantContext
  }
}
