import { afterEach, describe, expect, test } from 'bun:test'
import { connect } from 'node:net'
import { createApp } from '../../../src/app'
import { openDatabase } from '../../../src/db/client'
import { QueueRepository } from '../../../src/db/queue-repository'
import { freePort } from '../../../src/local/redis-server'
import { type Answer, BASE, call, expectError } from '../../helpers/api'
import { newTenant, sharedDeps, testApp, token } from '../../helpers/harness'
import { type OutageDeps, startOutageDeps, timed } from '../../helpers/outage'

const Q = `${BASE}/queues`
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** The contract's envelope, with the body's requestId equal to the header's. */
function expectEnvelope(res: Answer, status: number, code: string) {
  const body = expectError(res, status, code)
  expect(body.requestId).toBeTruthy()
  expect(res.headers.get('x-request-id')).toBe(body.requestId)
  expect(res.headers.get('content-type')).toContain('application/json')
  return body
}

/** A body of `size` bytes that is valid JSON for POST /queues if nothing cut it short. */
const queueBody = (name: string, size: number) => {
  const shell = JSON.stringify({ name, description: '' })
  return JSON.stringify({ name, description: 'x'.repeat(size - shell.length) })
}

/** A stream of `size` bytes in chunks, so the request has no Content-Length. */
function chunked(text: string, chunk = 256): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text)
  let offset = 0
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) return controller.close()
      controller.enqueue(bytes.slice(offset, offset + chunk))
      offset += chunk
    },
  })
}

async function parse(res: Response): Promise<Answer> {
  const text = await res.text()
  let body: unknown = text
  try {
    body = JSON.parse(text)
  } catch {}
  return { status: res.status, body, headers: res.headers }
}

describe('errors', () => {
  test('an unknown route is 404 MQ_NOT_FOUND in the envelope, inside and outside the base', async () => {
    const app = await testApp()
    expectEnvelope(await call(app, 'GET', '/no/such/route'), 404, 'MQ_NOT_FOUND')
    expectEnvelope(await call(app, 'POST', '/'), 404, 'MQ_NOT_FOUND')
    const inside = await call(app, 'GET', `${BASE}/no-such-thing`, { tenant: newTenant() })
    expectEnvelope(inside, 404, 'MQ_NOT_FOUND')
    const wrongMethod = await call(app, 'PATCH', `${Q}/orders`, { tenant: newTenant() })
    expectEnvelope(wrongMethod, 404, 'MQ_NOT_FOUND')
  })

  test('X-Request-Id is echoed when sent and generated otherwise, on errors and successes', async () => {
    const app = await testApp()
    const tenant = newTenant()
    const sent = 'gateway-req-0123_abc='
    const echoed = await call(app, 'GET', `${Q}/missing`, {
      tenant,
      headers: { 'x-request-id': sent },
    })
    expect(expectEnvelope(echoed, 404, 'MQ_QUEUE_NOT_FOUND').requestId).toBe(sent)

    const generated = await call(app, 'GET', `${Q}/missing`, { tenant })
    const id = expectEnvelope(generated, 404, 'MQ_QUEUE_NOT_FOUND').requestId
    expect(id).toMatch(UUID)
    const again = await call(app, 'GET', `${Q}/missing`, { tenant })
    expect(again.body.requestId).not.toBe(id)

    const ok = await call(app, 'GET', Q, { tenant, headers: { 'x-request-id': sent } })
    expect(ok.status).toBe(200)
    expect(ok.headers.get('x-request-id')).toBe(sent)
    expect((await call(app, 'GET', '/health')).headers.get('x-request-id')).toMatch(UUID)
  })

  test('an unusable X-Request-Id is replaced, not echoed', async () => {
    const app = await testApp()
    for (const sent of ['has space', 'x'.repeat(256), '<script>', 'a\tb']) {
      const res = await call(app, 'GET', '/nope', { headers: { 'x-request-id': sent } })
      const body = expectEnvelope(res, 404, 'MQ_NOT_FOUND')
      expect(body.requestId).toMatch(UUID)
    }
  })

  test('401 and 403 carry the request id too', async () => {
    const app = await testApp()
    const headers = { 'x-request-id': 'req-auth-1' }
    const unauth = await call(app, 'GET', Q, { headers })
    expect(expectEnvelope(unauth, 401, 'MQ_UNAUTHORIZED').requestId).toBe('req-auth-1')
    const forbidden = await call(app, 'GET', Q, { tenant: newTenant(), scope: '', headers })
    expect(expectEnvelope(forbidden, 403, 'MQ_FORBIDDEN').requestId).toBe('req-auth-1')
  })

  describe('request size', () => {
    const LIMIT = 1024

    test('a body over MAX_REQUEST_SIZE with Content-Length is 413 and the handler never runs', async () => {
      const app = await testApp({ MAX_REQUEST_SIZE: LIMIT })
      const tenant = newTenant()
      const body = queueBody('too-big', LIMIT + 1)
      const res = await app.request(Q, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${await token(tenant)}`,
          'content-type': 'application/json',
          'content-length': String(body.length),
        },
        body,
      })
      const err = expectEnvelope(await parse(res), 413, 'MQ_MESSAGE_TOO_LARGE')
      expect(err.details).toEqual({ limit: LIMIT })
      expect((await call(app, 'GET', `${Q}/too-big`, { tenant })).status).toBe(404)

      const fits = await call(app, 'POST', Q, {
        tenant,
        body: JSON.parse(queueBody('fits', LIMIT)),
      })
      expect(fits.status).toBe(201)
    })

    test('a chunked body over the limit (no Content-Length) is 413 and the handler never runs', async () => {
      const app = await testApp({ MAX_REQUEST_SIZE: LIMIT })
      const tenant = newTenant()
      const auth = `Bearer ${await token(tenant)}`
      const res = await app.request(Q, {
        method: 'POST',
        headers: { authorization: auth, 'content-type': 'application/json' },
        body: chunked(queueBody('chunked-big', 4 * LIMIT)),
        duplex: 'half',
      } as RequestInit)
      expectEnvelope(await parse(res), 413, 'MQ_MESSAGE_TOO_LARGE')
      expect((await call(app, 'GET', `${Q}/chunked-big`, { tenant })).status).toBe(404)

      // A route that never reads its body is guarded the same way (GHSA-9vqf-7f2p-gf9v).
      const unread = await app.request(`${Q}/anything`, {
        method: 'DELETE',
        headers: { authorization: auth },
        body: chunked('y'.repeat(4 * LIMIT)),
        duplex: 'half',
      } as RequestInit)
      expectEnvelope(await parse(unread), 413, 'MQ_MESSAGE_TOO_LARGE')

      const small = await app.request(Q, {
        method: 'POST',
        headers: { authorization: auth, 'content-type': 'application/json' },
        body: chunked(queueBody('chunked-small', LIMIT - 10), 100),
        duplex: 'half',
      } as RequestInit)
      expect(small.status).toBe(201)
    })

    describe('over real HTTP', () => {
      let server: ReturnType<typeof Bun.serve> | undefined
      afterEach(() => {
        server?.stop(true)
        server = undefined
      })

      async function serve() {
        const deps = await sharedDeps()
        const app = createApp({ ...deps, config: { ...deps.config, MAX_REQUEST_SIZE: LIMIT } })
        server = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: app.fetch })
        return `http://127.0.0.1:${server.port}`
      }

      test('a chunked body over the limit is 413; under it the request goes through', async () => {
        const origin = await serve()
        const tenant = newTenant()
        const headers = {
          authorization: `Bearer ${await token(tenant)}`,
          'content-type': 'application/json',
        }
        const res = await fetch(`${origin}${Q}`, {
          method: 'POST',
          headers,
          body: chunked(queueBody('http-big', 4 * LIMIT)),
          duplex: 'half',
        } as RequestInit)
        expectEnvelope(await parse(res), 413, 'MQ_MESSAGE_TOO_LARGE')

        const small = await fetch(`${origin}${Q}`, {
          method: 'POST',
          headers,
          body: chunked(queueBody('http-small', LIMIT - 10), 100),
          duplex: 'half',
        } as RequestInit)
        expect(small.status).toBe(201)
        const got = await fetch(`${origin}${Q}/http-big`, { headers })
        expect(got.status).toBe(404)
      })

      test('a small Content-Length beside chunked framing does not smuggle a big body (CVE-2025-59139)', async () => {
        const origin = await serve()
        const tenant = newTenant()
        const body = queueBody('smuggled', 4 * LIMIT)
        const chunks = `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`
        const request =
          `POST ${Q} HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
          `Authorization: Bearer ${await token(tenant)}\r\nContent-Type: application/json\r\n` +
          `Content-Length: 10\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunks}`
        const port = Number(new URL(origin).port)
        const raw = await new Promise<string>((resolve, reject) => {
          let out = ''
          const socket = connect(port, '127.0.0.1', () => socket.end(request))
          socket.setEncoding('utf8')
          socket.on('data', (d) => {
            out += d
          })
          socket.on('end', () => resolve(out))
          socket.on('error', reject)
        })
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1])
        expect([400, 413]).toContain(status)
        expect((await call(await testApp(), 'GET', `${Q}/smuggled`, { tenant })).status).toBe(404)
      })
    })
  })

  describe('unexpected failures', () => {
    async function brokenApp(thrown: unknown) {
      const deps = await sharedDeps()
      const queues = {
        ...deps.queueDeps.queues,
        get: async () => {
          throw thrown
        },
      }
      return createApp({ ...deps, queueDeps: { ...deps.queueDeps, queues } })
    }

    test('an exception inside a handler is 500 MQ_INTERNAL, generic and without a stack', async () => {
      const secret = 'password=hunter2 at /srv/app/src/db.ts:42'
      const app = await brokenApp(new Error(secret))
      const res = await call(app, 'GET', `${Q}/orders`, { tenant: newTenant() })
      const body = expectEnvelope(res, 500, 'MQ_INTERNAL')
      expect(body.message).toBe('internal error')
      expect(Object.keys(res.body).sort()).toEqual(['code', 'message', 'requestId'])
      const text = JSON.stringify(res.body)
      expect(text).not.toContain('hunter2')
      expect(text).not.toMatch(/\bat .+:\d+|stack|\.ts\b/)
    })

    test.each([
      ['a string', 'plain string thrown'],
      ['null', null],
      ['an object', { reason: 'not an Error' }],
    ])('throwing %s is still 500 MQ_INTERNAL in the envelope', async (_name, thrown) => {
      const app = await brokenApp(thrown)
      const res = await call(app, 'GET', `${Q}/orders`, { tenant: newTenant() })
      expectEnvelope(res, 500, 'MQ_INTERNAL')
      expect(JSON.stringify(res.body)).not.toContain('not an Error')
    })
  })

  test('an unreachable PostgreSQL answers 503 MQ_UNAVAILABLE, not 500', async () => {
    const deps = await sharedDeps()
    // A real postgres.js client aimed at a loopback port nothing listens on.
    const database = await openDatabase({
      url: `postgres://postgres@127.0.0.1:${freePort()}/mq`,
      pgliteDir: 'memory://',
      poolSize: 1,
    })
    try {
      const queues = new QueueRepository(database.db)
      const app = createApp({ ...deps, queueDeps: { ...deps.queueDeps, queues } })
      const { result, ms } = await timed(() =>
        call(app, 'GET', `${Q}/orders`, { tenant: newTenant() })
      )
      const body = expectEnvelope(result, 503, 'MQ_UNAVAILABLE')
      expect(body.retryAfter).toBeGreaterThan(0)
      expect(result.headers.get('retry-after')).toBeTruthy()
      expect(JSON.stringify(body)).not.toMatch(/select|message_topics|ECONNREFUSED/)
      expect(ms).toBeLessThan(2000)
    } finally {
      await database.close()
    }
  })

  describe('Redis unavailable', () => {
    let outage: OutageDeps | undefined
    afterEach(async () => {
      await outage?.close()
      outage = undefined
    })

    async function withQueue() {
      outage = await startOutageDeps()
      const app = createApp(outage.deps)
      const tenant = newTenant()
      const created = await call(app, 'POST', Q, { tenant, body: { name: 'orders' } })
      expect(created.status).toBe(201)
      expect((await call(app, 'GET', `${Q}/orders`, { tenant })).status).toBe(200)
      return { app, tenant }
    }

    function expectUnavailable(res: Answer) {
      const body = expectEnvelope(res, 503, 'MQ_UNAVAILABLE')
      expect(body.retryAfter).toBeGreaterThan(0)
      expect(res.headers.get('retry-after')).toBe(String(Math.ceil(body.retryAfter!)))
      expect(JSON.stringify(body)).not.toMatch(/127\.0\.0\.1|ECONN|timed out/)
    }

    test('a frozen Redis (SIGSTOP) answers 503 with Retry-After within 2 s, then recovers', async () => {
      const { app, tenant } = await withQueue()
      outage!.freeze()
      const { result, ms } = await timed(() => call(app, 'GET', `${Q}/orders`, { tenant }))
      expectUnavailable(result)
      expect(ms).toBeLessThan(2000)
      outage!.thaw()
      let status = 0
      for (let i = 0; i < 50 && status !== 200; i++) {
        status = (await call(app, 'GET', `${Q}/orders`, { tenant })).status
        if (status !== 200) await Bun.sleep(100)
      }
      expect(status).toBe(200)
    })

    test('a killed Redis answers 503 with Retry-After at once', async () => {
      const { app, tenant } = await withQueue()
      outage!.kill()
      await Bun.sleep(100)
      const { result, ms } = await timed(() => call(app, 'GET', `${Q}/orders`, { tenant }))
      expectUnavailable(result)
      expect(ms).toBeLessThan(1000)
      const purge = await call(app, 'POST', `${Q}/orders/purge`, { tenant })
      expectUnavailable(purge)
    })
  })
})
