import { createHash, timingSafeEqual } from 'node:crypto'
import { createMiddleware } from 'hono/factory'
import { createRemoteJWKSet, type JWTPayload, type JWTVerifyGetKey, jwtVerify } from 'jose'
import { SCOPES, type Scope, type TenantContext } from '../../domain/context'
import { MqError } from '../../domain/errors'
import type { AppEnv, Caller } from '../env'

/** How callers prove themselves; built once from the config and the local secrets. */
export interface AuthOptions {
  /** HS256 secret; exactly one of `jwtSecret` and `jwksUrl` is set. */
  jwtSecret?: string
  jwksUrl?: string
  issuer?: string
  audience?: string
  clockToleranceS: number
  serviceToken?: string
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const MAX_TOKEN_LENGTH = 8192
const TOKEN_CACHE_SIZE = 10_000
const ACCEPTED_TYP = new Set(['jwt', 'at+jwt', 'application/at+jwt'])

const unauthorized = (message = 'missing or invalid credentials') =>
  new MqError('MQ_UNAUTHORIZED', message)

const digest = (s: string) => createHash('sha256').update(s).digest()

function parseScopes(payload: JWTPayload): Set<Scope> {
  const raw = payload.scope ?? payload.scp
  const words = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(' ') : []
  return new Set(SCOPES.filter((s) => words.includes(s)))
}

/**
 * Verifies bearer JWTs into a tenant. Verified tokens are cached until they expire (at most a
 * minute) so the hot path does not pay for a signature check on every request.
 */
function jwtVerifier(opts: AuthOptions) {
  const key: Uint8Array | JWTVerifyGetKey | undefined = opts.jwtSecret
    ? new TextEncoder().encode(opts.jwtSecret)
    : opts.jwksUrl
      ? createRemoteJWKSet(new URL(opts.jwksUrl))
      : undefined
  // Pinned: an HS256 secret never verifies an asymmetric token and vice versa, which closes
  // algorithm confusion; `none` is never accepted by jose.
  const algorithms = opts.jwtSecret ? ['HS256'] : ['RS256', 'ES256', 'EdDSA']
  const cache = new Map<string, { tenant: TenantContext; until: number }>()

  return async function verifyJwt(token: string): Promise<TenantContext> {
    const hit = cache.get(token)
    if (hit && hit.until > Date.now()) return hit.tenant
    if (!key || token.length > MAX_TOKEN_LENGTH) throw unauthorized()
    let payload: JWTPayload
    let typ: string | undefined
    try {
      const verified = await jwtVerify(token, key as Uint8Array, {
        algorithms,
        issuer: opts.issuer,
        audience: opts.audience,
        clockTolerance: opts.clockToleranceS,
        requiredClaims: ['exp'],
      })
      payload = verified.payload
      typ = verified.protectedHeader.typ
    } catch {
      throw unauthorized('invalid or expired token')
    }
    if (typ !== undefined && !ACCEPTED_TYP.has(typ.toLowerCase()))
      throw unauthorized('invalid token type')
    const tid = payload.tid
    if (typeof tid !== 'string' || !UUID.test(tid)) throw unauthorized('token has no tenant')
    const tenant: TenantContext = {
      tenantId: tid.toLowerCase(),
      scopes: parseScopes(payload),
      principal: { kind: 'user', name: typeof payload.sub === 'string' ? payload.sub : null },
    }
    if (cache.size >= TOKEN_CACHE_SIZE) cache.delete(cache.keys().next().value as string)
    cache.set(token, { tenant, until: Math.min((payload.exp ?? 0) * 1000, Date.now() + 60_000) })
    return tenant
  }
}

/** Verifies bearer JWTs (see jwtVerifier) and service tokens. */
export function createAuthenticator(opts: AuthOptions) {
  const verifyJwt = jwtVerifier(opts)
  const serviceDigest = opts.serviceToken ? digest(opts.serviceToken) : undefined

  function verifyServiceToken(given: string): boolean {
    return serviceDigest !== undefined && timingSafeEqual(digest(given), serviceDigest)
  }

  /**
   * Resolves the caller from `X-Service-Token` (+ `X-Tenant-Id`) or `Authorization: Bearer`.
   * @throws MqError 401 when neither proves anything.
   */
  async function authenticate(headers: {
    authorization?: string
    serviceToken?: string
    tenantId?: string
    serviceName?: string
  }): Promise<Caller> {
    if (headers.serviceToken !== undefined) {
      if (!verifyServiceToken(headers.serviceToken)) throw unauthorized('invalid service token')
      if (headers.tenantId === undefined) return { kind: 'service' }
      if (!UUID.test(headers.tenantId)) {
        throw new MqError('MQ_VALIDATION_FAILED', 'X-Tenant-Id must be a UUID')
      }
      return {
        kind: 'tenant',
        tenant: {
          tenantId: headers.tenantId.toLowerCase(),
          scopes: new Set(SCOPES),
          principal: { kind: 'service', name: headers.serviceName ?? null },
        },
      }
    }
    const match = /^Bearer\s+(\S+)$/i.exec(headers.authorization ?? '')
    if (!match?.[1]) throw unauthorized()
    return { kind: 'tenant', tenant: await verifyJwt(match[1]) }
  }

  return { authenticate, verifyServiceToken }
}

export type Authenticator = ReturnType<typeof createAuthenticator>

/** Sets `c.var.caller` (and `c.var.tenant` for tenant callers) or answers 401. */
export const authenticate = (auth: Authenticator) =>
  createMiddleware<AppEnv>(async (c, next) => {
    // The tenant and service name matter to service tokens only: a bearer request (every
    // publish) reads two headers, not four.
    const headers = c.req.raw.headers
    const serviceToken = headers.get('x-service-token') ?? undefined
    const caller = await auth.authenticate(
      serviceToken === undefined
        ? { authorization: headers.get('authorization') ?? undefined }
        : {
            serviceToken,
            tenantId: headers.get('x-tenant-id') ?? undefined,
            serviceName: headers.get('x-service-name') ?? undefined,
          }
    )
    c.set('caller', caller)
    if (caller.kind === 'tenant') c.set('tenant', caller.tenant)
    await next()
  })

/** Lets through a tenant caller holding `scope` (or `mq:admin`); 403 otherwise. */
export const requireScope = (scope: Scope) =>
  createMiddleware<AppEnv>(async (c, next) => {
    const caller = c.get('caller')
    if (caller.kind !== 'tenant') {
      throw new MqError('MQ_FORBIDDEN', 'a service token must name a tenant with X-Tenant-Id here')
    }
    if (!caller.tenant.scopes.has(scope) && !caller.tenant.scopes.has('mq:admin')) {
      throw new MqError('MQ_FORBIDDEN', `scope '${scope}' is required`)
    }
    await next()
  })

/**
 * For the all-tenant views: a service token (with or without a tenant) or a tenant caller
 * with `scope`.
 */
export const requireScopeOrService = (scope: Scope) =>
  createMiddleware<AppEnv>(async (c, next) => {
    if (c.get('caller').kind === 'service') return next()
    return requireScope(scope)(c, next)
  })
