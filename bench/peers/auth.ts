/**
 * What a team's own publish route does before it touches a queue (issue 23's "+auth" peers):
 * `hono/jwt` verifying the same HS256 tokens the service takes, on every request; a tenant
 * claim (`tid`) required; `@hono/zod-validator` with the schema of a published message. The
 * plain peers register these in front of their publish routes and do the same operation after.
 */
import { zValidator } from '@hono/zod-validator'
import type { MiddlewareHandler } from 'hono'
import { every } from 'hono/combine'
import { jwt } from 'hono/jwt'
import { z } from 'zod'

const queue = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9._-]+$/)
const message = {
  payload: z.unknown(),
  key: z.string().max(256).optional(),
  messageId: z.string().max(128).optional(),
}
const single = z.object({ queue, ...message })
const batch = z.object({ queue, messages: z.array(z.object(message)).min(1).max(1000) })

/** 403 unless the verified token names a tenant. */
const requireTenant: MiddlewareHandler = async (c, next) => {
  const claims = c.get('jwtPayload') as { tid?: unknown } | undefined
  if (typeof claims?.tid !== 'string' || claims.tid === '') {
    return c.json({ error: { code: 'FORBIDDEN', message: 'the token names no tenant' } }, 403)
  }
  await next()
}

/** The middleware of each publish route, for tokens signed with `secret`. */
export interface PublishAuth {
  single: MiddlewareHandler
  batch: MiddlewareHandler
}

export function publishAuth(secret: string): PublishAuth {
  const verify = jwt({ secret, alg: 'HS256' })
  return {
    single: every(verify, requireTenant, zValidator('json', single)),
    batch: every(verify, requireTenant, zValidator('json', batch)),
  }
}
