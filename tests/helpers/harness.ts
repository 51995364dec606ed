import { SignJWT } from 'jose'
import { createApp } from '../../src/app'
import { type Config, loadConfig } from '../../src/config'
import { buildDeps, type Deps } from '../../src/deps'
import type { HostResolver, WebhookUrlGuard } from '../../src/egress/ssrf'
import { createLogger } from '../../src/observability/logger'
import type { Infra } from './infra'

export const JWT_SECRET = 'test-secret-that-is-long-enough-for-hs256-0123456789'
export const SERVICE_TOKEN = 'test-service-token-0123456789abcdef'

let infra: Infra | undefined
let shared: Promise<Deps> | undefined

export function setInfra(value: Infra | undefined) {
  infra = value
}

export function currentInfra(): Infra {
  if (!infra) throw new Error('test infrastructure is not started (tests/setup.ts)')
  return infra
}

/**
 * The only DNS tests get: they never ask the real resolver, and every name they may use
 * answers loopback, so even a delivery nobody meant to make stays on this machine. Any other
 * name is unknown (ENOTFOUND), as it would be on a machine without a network.
 */
export const TEST_HOSTS: Record<string, string[]> = {
  localhost: ['127.0.0.1'],
  'example.com': ['127.0.0.1'],
}

export const testResolver: HostResolver = async (host) => {
  const addresses = TEST_HOSTS[host]
  if (!addresses)
    throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' })
  return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }))
}

/**
 * A config for tests: the run's stores, a random key prefix, silent logs. `example.com`, the
 * webhook host the API tests use, is an allowed webhook host (it resolves to loopback above).
 */
export function testConfig(env: Record<string, string> = {}): Config {
  const { redisUrl, redisClusterNodes, databaseUrl, dataDir } = currentInfra()
  return loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    REDIS_URL: redisUrl,
    REDIS_CLUSTER_NODES: redisClusterNodes,
    DATABASE_URL: databaseUrl,
    DATA_DIR: dataDir,
    REDIS_KEY_PREFIX: `t${Math.random().toString(36).slice(2, 8)}`,
    JWT_SECRET,
    INTERNAL_SERVICE_TOKEN: SERVICE_TOKEN,
    WEBHOOK_ALLOWED_HOSTS: 'example.com',
    ...env,
  })
}

/** Dependencies shared by every test of the run (built once, closed by tests/setup.ts). */
export function sharedDeps(): Promise<Deps> {
  shared ??= buildDeps(testConfig(), createLogger('silent'), { resolveHost: testResolver })
  return shared
}

export async function closeSharedDeps(): Promise<void> {
  if (shared) await (await shared).close()
  shared = undefined
}

/** The app over the shared dependencies, with config overrides applied to the HTTP layer. */
export async function testApp(config: Partial<Config> = {}) {
  const deps = await sharedDeps()
  return createApp({ ...deps, config: { ...deps.config, ...config } })
}

/** The app over the shared dependencies, checking webhook URLs with `guard` (a stub resolver's). */
export async function testAppWithGuard(guard: WebhookUrlGuard) {
  const deps = await sharedDeps()
  return createApp({
    ...deps,
    subscriptionDeps: { ...deps.subscriptionDeps, checkWebhookUrl: (url) => guard.refusal(url) },
  })
}

export const newTenant = () => crypto.randomUUID()

/** A signed HS256 token as the auth service would issue it. */
export function token(
  tenantId: string,
  scope = 'mq:admin',
  opts: { sub?: string; expiresIn?: number; secret?: string; claims?: Record<string, unknown> } = {}
): Promise<string> {
  return new SignJWT({ tid: tenantId, scope, ...opts.claims })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(opts.sub ?? 'tester')
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + (opts.expiresIn ?? 600))
    .sign(new TextEncoder().encode(opts.secret ?? JWT_SECRET))
}

type AppLike = { request: (path: string, init?: RequestInit) => Response | Promise<Response> }

/** Calls `app` as `tenantId` with `scope`; `body` is sent as JSON. */
export async function call(
  app: AppLike,
  method: string,
  path: string,
  opts: { tenant?: string; scope?: string; body?: unknown; headers?: Record<string, string> } = {}
): Promise<{ status: number; body: any; headers: Headers }> {
  const headers: Record<string, string> = { ...opts.headers }
  if (opts.tenant) headers.authorization = `Bearer ${await token(opts.tenant, opts.scope)}`
  if (opts.body !== undefined) headers['content-type'] ??= 'application/json'
  const res = await app.request(path, {
    method,
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
  })
  const text = await res.text()
  let body: unknown = text
  try {
    body = text ? JSON.parse(text) : null
  } catch {}
  return { status: res.status, body, headers: res.headers }
}

/**
 * The shared dependencies once Redis answers: a cluster takes a moment to connect, and the
 * command connection queues nothing meanwhile, so a test that calls the store first waits.
 */
export async function readyDeps(): Promise<Deps> {
  const deps = await sharedDeps()
  if (deps.redis.status !== 'ready') {
    await new Promise((resolve) => deps.redis.once('ready', resolve))
  }
  return deps
}
