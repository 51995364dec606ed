import { createRoute, type RouteConfig } from '@hono/zod-openapi'
import type { MiddlewareHandler } from 'hono'
import type { Scope } from '../domain/context'
import type { AppEnv } from './env'
import { requireScope, requireScopeOrService } from './middleware/auth'

/**
 * Who may call a route: a tenant caller holding the scope (or `mq:admin`); with `orService`, a
 * service token too. `null`: the route's `security` says, and its router checks it.
 */
export type Guard = Scope | { orService: Scope } | null

type Method = 'get' | 'put' | 'post' | 'delete'
type Spec = Omit<RouteConfig, 'method' | 'path' | 'tags' | 'middleware'>

const guard = (who: Guard): MiddlewareHandler<AppEnv>[] =>
  who === null
    ? []
    : [typeof who === 'string' ? requireScope(who) : requireScopeOrService(who.orService)]

/**
 * The one way routes are declared: `routes(tag)` gives a router's `route(method, path, guard,
 * { summary, request, responses })`. Generic so each route keeps its literal method and path:
 * `hono/client` types calls by them.
 */
export const routes =
  (tag: string) =>
  <M extends Method, P extends string, S extends Spec>(method: M, path: P, who: Guard, spec: S) =>
    createRoute({ method, path, tags: [tag], ...spec, middleware: guard(who) })
