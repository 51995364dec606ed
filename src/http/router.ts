import { OpenAPIHono } from '@hono/zod-openapi'
import type { Context } from 'hono'
import type { DomainContext } from '../domain/context'
import { MqError } from '../domain/errors'
import type { AppEnv } from './env'

/**
 * A router whose validation failures throw our error instead of answering zod's raw result
 * (zod-validator's default). Issues keep path, code and message only: zod 4 issues carry the
 * rejected input, which must not be echoed back.
 */
export function createRouter() {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) {
        const issues = result.error.issues.map((i) => ({
          path: i.path.map(String).join('.'),
          code: i.code,
          message: i.message,
        }))
        const first = issues[0]
        // A batch names the first failing message by its index, as API.md asks.
        const [field, index] = result.error.issues[0]?.path ?? []
        throw new MqError(
          'MQ_VALIDATION_FAILED',
          first ? `${first.path || 'request'}: ${first.message}` : 'invalid request',
          field === 'messages' && typeof index === 'number' ? { index, issues } : { issues }
        )
      }
    },
  })
}

/** The domain context of a tenant request (set by the auth middleware). */
export function domainContext(c: Context<AppEnv>): DomainContext {
  const tenant = c.get('tenant')
  return { tenantId: tenant.tenantId, principal: tenant.principal, requestId: c.get('requestId') }
}
