import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import { createApp } from '../../../src/app'
import { createAuthenticator } from '../../../src/http/middleware/auth'
import { ErrorSchema } from '../../../src/http/schemas/common'
import { StatusSchema } from '../../../src/http/schemas/health'
import { type Answer, BASE, call, expectError } from '../../helpers/api'
import {
  JWT_SECRET,
  newTenant,
  SERVICE_TOKEN,
  sharedDeps,
  testApp,
  token,
} from '../../helpers/harness'

const Q = `${BASE}/queues`

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
const now = () => Math.floor(Date.now() / 1000)
const secretKey = new TextEncoder().encode(JWT_SECRET)

/** Signs `payload` with the test secret, with full control over the header and claims. */
function sign(payload: Record<string, unknown>, header: Record<string, unknown> = {}) {
  return new SignJWT(payload)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT', ...header })
    .sign(secretKey)
}

type AppLike = Parameters<typeof call>[0]

const bearer = (app: AppLike, jwt: string, path = Q) =>
  call(app, 'GET', path, { headers: { authorization: `Bearer ${jwt}` } })

/**
 * A 401 in the contract's envelope that says no more than its message: no stack, no
 * details, no echo of the token.
 */
function expectUnauthorized(res: Answer, jwt?: string) {
  const body = expectError(res, 401, 'MQ_UNAUTHORIZED')
  expect(Object.keys(res.body).sort()).toEqual(['code', 'message', 'requestId'])
  expect(body.requestId).toBe(res.headers.get('x-request-id')!)
  const text = JSON.stringify(res.body)
  expect(text).not.toMatch(/\bat .+:\d+|stack|node_modules|jose|JWS|JWT[A-Z]/)
  if (jwt) expect(text).not.toContain(jwt.slice(0, 20))
}

describe('security', () => {
  test('no credentials is 401 MQ_UNAUTHORIZED with the envelope and X-Request-Id', async () => {
    const app = await testApp()
    const res = await call(app, 'GET', Q)
    expectUnauthorized(res)
    expect(res.headers.get('x-request-id')).toBeTruthy()
  })

  test('a valid token is accepted (the baseline every rejection is measured against)', async () => {
    const app = await testApp()
    const jwt = await sign({ tid: newTenant(), scope: 'mq:read', exp: now() + 60 })
    expect((await bearer(app, jwt)).status).toBe(200)
  })

  test('alg none is rejected', async () => {
    const app = await testApp()
    const payload = { tid: newTenant(), scope: 'mq:admin', exp: now() + 600 }
    for (const alg of ['none', 'None', 'NONE']) {
      const jwt = `${b64url({ alg, typ: 'JWT' })}.${b64url(payload)}.`
      expectUnauthorized(await bearer(app, jwt), jwt)
    }
  })

  test('a token signed with another secret is rejected', async () => {
    const app = await testApp()
    const jwt = await token(newTenant(), 'mq:admin', {
      secret: 'another-secret-that-is-also-long-enough-0123456789',
    })
    expectUnauthorized(await bearer(app, jwt), jwt)
  })

  test('a token with a tampered payload is rejected', async () => {
    const app = await testApp()
    const jwt = await token(newTenant(), 'mq:read')
    const [h, , s] = jwt.split('.')
    const forged = `${h}.${b64url({ tid: newTenant(), scope: 'mq:admin', exp: now() + 600 })}.${s}`
    expectUnauthorized(await bearer(app, forged), forged)
  })

  test('expired past the 30 s clock tolerance is rejected; within it accepted', async () => {
    const app = await testApp()
    const tid = newTenant()
    const expired = await sign({ tid, scope: 'mq:read', exp: now() - 45 })
    expectUnauthorized(await bearer(app, expired), expired)
    const justExpired = await sign({ tid, scope: 'mq:read', exp: now() - 5 })
    expect((await bearer(app, justExpired)).status).toBe(200)
  })

  test('a token without exp is rejected', async () => {
    const app = await testApp()
    const jwt = await sign({ tid: newTenant(), scope: 'mq:admin', iat: now() })
    expectUnauthorized(await bearer(app, jwt), jwt)
  })

  test('nbf in the future is rejected', async () => {
    const app = await testApp()
    const jwt = await sign({
      tid: newTenant(),
      scope: 'mq:admin',
      exp: now() + 600,
      nbf: now() + 300,
    })
    expectUnauthorized(await bearer(app, jwt), jwt)
  })

  test.each([
    ['no tid', {}],
    ['non-UUID tid', { tid: 'tenant-1' }],
    ['numeric tid', { tid: 42 }],
    ['UUID with junk', { tid: `${newTenant()}x` }],
    ['array tid', { tid: [newTenant()] }],
  ])('a token with %s is rejected', async (_name, claims) => {
    const app = await testApp()
    const jwt = await sign({ scope: 'mq:admin', exp: now() + 600, ...claims })
    expectUnauthorized(await bearer(app, jwt), jwt)
  })

  test('a wrong typ header is rejected; JWT and at+jwt are accepted', async () => {
    const app = await testApp()
    const tid = newTenant()
    for (const typ of ['foo', 'JWE', 'dpop+jwt']) {
      const jwt = await sign({ tid, scope: 'mq:read', exp: now() + 600 }, { typ })
      expectUnauthorized(await bearer(app, jwt), jwt)
    }
    for (const typ of ['JWT', 'at+jwt']) {
      const jwt = await sign({ tid, scope: 'mq:read', exp: now() + 600 }, { typ })
      expect((await bearer(app, jwt)).status).toBe(200)
    }
  })

  test.each([
    ['Bearer'],
    ['Bearer '],
    ['Bearer abc'],
    ['Bearer a.b.c'],
    ['Bearer ...'],
    ['Bearer a.b'],
    ['Bearer a.b.c.d.e'],
    ['Bearer %%%.%%%.%%%'],
    ['Bearer eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln'],
    ['Basic dXNlcjpwYXNz'],
    ['bearer'],
    ['Token abc.def.ghi'],
  ])('malformed Authorization %j is rejected', async (authorization) => {
    const app = await testApp()
    const res = await call(app, 'GET', Q, { headers: { authorization } })
    expectUnauthorized(res)
  })

  test('a valid token with extra text after it is rejected', async () => {
    const app = await testApp()
    const jwt = await token(newTenant(), 'mq:read')
    const res = await call(app, 'GET', Q, { headers: { authorization: `Bearer ${jwt} extra` } })
    expectUnauthorized(res)
  })

  test('a token over 8 KB is rejected; one over 16 KB is a header block too large (431)', async () => {
    const app = await testApp()
    const padded = (bytes: number) =>
      sign({ tid: newTenant(), scope: 'mq:admin', exp: now() + 600, pad: 'x'.repeat(bytes) })
    const long = await padded(7 * 1024)
    expect(long.length).toBeGreaterThan(8 * 1024)
    expectUnauthorized(await bearer(app, long), long)
    const huge = await padded(16 * 1024)
    const res = await bearer(app, huge)
    expect([res.status, res.body.code]).toEqual([431, 'MQ_HEADERS_TOO_LARGE'])
  })

  test.each(['RS256', 'ES256'] as const)(
    'an %s token is rejected when the service verifies HS256',
    async (alg) => {
      const app = await testApp()
      const { privateKey } = await generateKeyPair(alg)
      const jwt = await new SignJWT({ tid: newTenant(), scope: 'mq:admin' })
        .setProtectedHeader({ alg, typ: 'JWT' })
        .setExpirationTime('10m')
        .sign(privateKey)
      expectUnauthorized(await bearer(app, jwt), jwt)
    }
  )

  describe('with JWT_ISSUER and JWT_AUDIENCE', () => {
    async function appWithIssuer() {
      const deps = await sharedDeps()
      const auth = createAuthenticator({
        jwtSecret: JWT_SECRET,
        issuer: 'https://auth.example.test',
        audience: 'message-queue',
        clockToleranceS: 30,
        serviceToken: SERVICE_TOKEN,
      })
      return createApp({ ...deps, auth })
    }

    test('wrong or missing iss/aud is 401, the right ones 200', async () => {
      const app = await appWithIssuer()
      const tid = newTenant()
      const base = { tid, scope: 'mq:read', exp: now() + 600 }
      const right = { iss: 'https://auth.example.test', aud: 'message-queue' }
      for (const claims of [
        { ...right, iss: 'https://evil.example.test' },
        { ...right, aud: 'another-service' },
        { aud: right.aud },
        { iss: right.iss },
      ]) {
        const jwt = await sign({ ...base, ...claims })
        expectUnauthorized(await bearer(app, jwt), jwt)
      }
      expect((await bearer(app, await sign({ ...base, ...right }))).status).toBe(200)
      const listed = await bearer(app, await sign({ ...base, ...right, aud: ['x', right.aud] }))
      expect(listed.status).toBe(200)
    })
  })

  describe('with JWKS_URL', () => {
    let server: ReturnType<typeof Bun.serve>
    let keys: Awaited<ReturnType<typeof generateKeyPair>>
    let publicJwk: Record<string, unknown>

    beforeAll(async () => {
      keys = await generateKeyPair('RS256', { extractable: true })
      publicJwk = { ...(await exportJWK(keys.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }
      server = Bun.serve({
        hostname: '127.0.0.1',
        port: 0,
        fetch: () => Response.json({ keys: [publicJwk] }),
      })
    })
    afterAll(() => server.stop(true))

    async function jwksApp() {
      const deps = await sharedDeps()
      const auth = createAuthenticator({
        jwksUrl: `http://127.0.0.1:${server.port}/.well-known/jwks.json`,
        clockToleranceS: 30,
      })
      return createApp({ ...deps, auth })
    }

    test('an RS256 token from the key set is accepted', async () => {
      const app = await jwksApp()
      const jwt = await new SignJWT({ tid: newTenant(), scope: 'mq:read' })
        .setProtectedHeader({ alg: 'RS256', kid: 'k1', typ: 'JWT' })
        .setExpirationTime('10m')
        .sign(keys.privateKey)
      expect((await bearer(app, jwt)).status).toBe(200)
    })

    test('HS256 signed with the public key (algorithm confusion) is rejected', async () => {
      const app = await jwksApp()
      const payload = { tid: newTenant(), scope: 'mq:admin', exp: now() + 600 }
      for (const material of [JSON.stringify(publicJwk), String(publicJwk.n)]) {
        const jwt = await new SignJWT(payload)
          .setProtectedHeader({ alg: 'HS256', kid: 'k1', typ: 'JWT' })
          .sign(new TextEncoder().encode(material))
        expectUnauthorized(await bearer(app, jwt), jwt)
      }
    })

    test('an unknown kid is rejected', async () => {
      const app = await jwksApp()
      const other = await generateKeyPair('RS256')
      const jwt = await new SignJWT({ tid: newTenant(), scope: 'mq:read' })
        .setProtectedHeader({ alg: 'RS256', kid: 'unknown', typ: 'JWT' })
        .setExpirationTime('10m')
        .sign(other.privateKey)
      expectUnauthorized(await bearer(app, jwt), jwt)
    })
  })

  test('a missing scope is 403 MQ_FORBIDDEN', async () => {
    const app = await testApp()
    const tenant = newTenant()
    for (const scope of ['', 'mq:publish mq:consume', 'mq:readx', 'admin']) {
      const res = await call(app, 'GET', Q, { tenant, scope })
      expect(res.status).toBe(403)
      expect(ErrorSchema.parse(res.body).code).toBe('MQ_FORBIDDEN')
    }
  })

  test('mq:admin implies every other scope; a scope array (scp) is read too', async () => {
    const app = await testApp()
    const tenant = newTenant()
    expect((await call(app, 'GET', Q, { tenant, scope: 'mq:admin' })).status).toBe(200)
    const created = await call(app, 'POST', Q, {
      tenant,
      scope: 'mq:admin',
      body: { name: 'scoped' },
    })
    expect(created.status).toBe(201)
    const scp = await sign({ tid: tenant, scp: ['mq:read'], exp: now() + 600 })
    expect((await bearer(app, scp, `${Q}/scoped`)).status).toBe(200)
  })

  test('a wrong service token is 401, whatever tenant it names', async () => {
    const app = await testApp()
    for (const serviceToken of ['wrong', '', `${SERVICE_TOKEN}x`, SERVICE_TOKEN.slice(0, -1)]) {
      const res = await call(app, 'GET', Q, {
        headers: { 'x-service-token': serviceToken, 'x-tenant-id': newTenant() },
      })
      expectUnauthorized(res, SERVICE_TOKEN)
    }
  })

  test('a wrong service token is not rescued by a valid bearer token', async () => {
    const app = await testApp()
    const res = await call(app, 'GET', Q, {
      tenant: newTenant(),
      headers: { 'x-service-token': 'wrong' },
    })
    expectUnauthorized(res)
  })

  test('the service token with X-Tenant-Id acts for exactly that tenant', async () => {
    const app = await testApp()
    const tenant = newTenant()
    const service = { 'x-service-token': SERVICE_TOKEN, 'x-service-name': 'billing' }
    const created = await call(app, 'POST', Q, {
      headers: { ...service, 'x-tenant-id': tenant },
      body: { name: 'from-service' },
    })
    expect(created.status).toBe(201)

    const own = await call(app, 'GET', `${Q}/from-service`, { tenant, scope: 'mq:read' })
    expect(own.status).toBe(200)
    expect(own.body.name).toBe('from-service')

    const other = await call(app, 'GET', `${Q}/from-service`, { tenant: newTenant() })
    expect(other.status).toBe(404)
    const otherViaService = await call(app, 'GET', `${Q}/from-service`, {
      headers: { ...service, 'x-tenant-id': newTenant() },
    })
    expect(otherViaService.status).toBe(404)
    // Upper-case ids name the same tenant: UUIDs are case-insensitive.
    const upper = await call(app, 'GET', `${Q}/from-service`, {
      headers: { ...service, 'x-tenant-id': tenant.toUpperCase() },
    })
    expect(upper.status).toBe(200)
  })

  test('the service token without X-Tenant-Id is 403 on tenant routes', async () => {
    const app = await testApp()
    for (const [method, path, body] of [
      ['GET', Q],
      ['POST', Q, { name: 'nobody' }],
      ['GET', `${Q}/anything`],
    ] as const) {
      const res = await call(app, method, path, {
        headers: { 'x-service-token': SERVICE_TOKEN },
        body,
      })
      expect(res.status).toBe(403)
      expect(ErrorSchema.parse(res.body).code).toBe('MQ_FORBIDDEN')
    }
  })

  test('an X-Tenant-Id that is not a UUID is 400', async () => {
    const app = await testApp()
    for (const tenantId of ['acme', '', '../other', `${newTenant()}0`, '{tenant}']) {
      const res = await call(app, 'GET', Q, {
        headers: { 'x-service-token': SERVICE_TOKEN, 'x-tenant-id': tenantId },
      })
      expect(res.status).toBe(400)
      expect(ErrorSchema.parse(res.body).code).toBe('MQ_VALIDATION_FAILED')
    }
  })

  test('a JWT cannot pick its tenant with X-Tenant-Id', async () => {
    const app = await testApp()
    const owner = newTenant()
    await call(app, 'POST', Q, { tenant: owner, body: { name: 'mine' } })
    const res = await call(app, 'GET', `${Q}/mine`, {
      tenant: newTenant(),
      headers: { 'x-tenant-id': owner },
    })
    expect(res.status).toBe(404)
  })

  test('the service token on /status without a tenant lists every tenant’s queues', async () => {
    const app = await testApp()
    const [a, b] = [newTenant(), newTenant()]
    // Names sort first so they fall inside the listed page whatever else the run created.
    const nameA = `0-status-${a.slice(0, 8)}`
    const nameB = `0-status-${b.slice(0, 8)}`
    await call(app, 'POST', Q, { tenant: a, body: { name: nameA } })
    await call(app, 'POST', Q, { tenant: b, body: { name: nameB } })
    const res = await call(app, 'GET', `${BASE}/status`, {
      headers: { 'x-service-token': SERVICE_TOKEN },
    })
    expect(res.status).toBe(200)
    const status = StatusSchema.parse(res.body)
    expect(status.queues).toContainEqual(
      expect.objectContaining({ name: nameA, tenantId: a, length: 0 })
    )
    expect(status.queues).toContainEqual(
      expect.objectContaining({ name: nameB, tenantId: b, length: 0 })
    )
  })

  test('no spelling of a tenant path reaches a handler without credentials', async () => {
    const app = await testApp()
    const tenant = newTenant()
    await call(app, 'POST', Q, { tenant, body: { name: 'orders' } })
    for (const path of [
      `${BASE}//queues`,
      `${BASE}/./queues`,
      `${BASE}/health/../queues`,
      `${BASE}/health/%2e%2e/queues`,
      `${BASE}/health%2f..%2fqueues`,
      `${BASE}/health;/../queues`,
      `${BASE}/%71ueues`,
      `${Q}/`,
      `${Q}?x=/health`,
      `${BASE}/health/`,
      `${BASE}/status`,
    ]) {
      const res = await call(app, 'GET', path, { headers: { 'x-tenant-id': tenant } })
      expect({ path, status: res.status }).toEqual({ path, status: 401 })
    }
  })

  test('a JWT is never taken for the service token', async () => {
    const app = await testApp()
    const jwt = await token(newTenant(), 'mq:admin')
    const res = await call(app, 'GET', `${BASE}/status`, {
      headers: { 'x-service-token': jwt },
    })
    expectUnauthorized(res)
  })
})
