import { afterEach, describe, expect, test } from 'bun:test'
import { createHash, randomBytes } from 'node:crypto'
import fc from 'fast-check'
import { createApp } from '../../src/app'
import { buildDeps, type Deps } from '../../src/deps'
import { createLogger } from '../../src/observability/logger'
import { decodeFields } from '../../src/streams/codec'
import { type CipherContext, PayloadCipher } from '../../src/streams/crypto'
import { BASE, call } from '../helpers/api'
import { newTenant, sharedDeps, testApp, testConfig, testResolver } from '../helpers/harness'

const Q = `${BASE}/queues`

const newKey = () => randomBytes(32).toString('base64')
/** The key id an envelope names: the first 8 hex digits of SHA-256 of the master key. */
const kidOf = (key: string) =>
  createHash('sha256').update(Buffer.from(key, 'base64')).digest('hex').slice(0, 8)

/** Whether decrypting `envelope` in `ctx` fails, as it must for anything not sealed there. */
function refused(cipher: PayloadCipher, envelope: string, ctx: CipherContext): boolean {
  try {
    cipher.decrypt(envelope, ctx)
    return false
  } catch {
    return true
  }
}

/** A tenant with an encrypted queue holding `n` messages whose payloads carry `marker`. */
async function encryptedQueue(n: number, marker: string, tenant = newTenant()) {
  const app = await testApp()
  const deps = await sharedDeps()
  expect(
    (await call(app, 'POST', Q, { tenant, body: { name: 'sealed', encrypted: true } })).status
  ).toBe(201)
  const messages = Array.from({ length: n }, (_, i) => ({
    messageId: `m-${i}`,
    payload: { secret: `${marker}-${i}` },
  }))
  const published = await call(app, 'POST', `${BASE}/publish/batch`, {
    tenant,
    body: { queue: 'sealed', messages },
  })
  expect(published.status).toBe(201)
  const queue = (await deps.queueDeps.queues.get(tenant, 'sealed'))!
  const stream = deps.keys.partition(tenant, 'sealed', 0, 'stream')
  const entries = (await deps.redis.xrange(stream, '-', '+')).map(([id, fields]) =>
    decodeFields(id, fields)
  )
  expect(entries).toHaveLength(n)
  return { app, deps, tenant, queue, stream, entries }
}

describe('ciphertext isolation and AES-GCM hygiene (S4)', () => {
  test('stored payloads are sealed: the plaintext is nowhere in Redis, the envelope is v1.<kid>.<iv>.<ct>.<tag>', async () => {
    const marker = `plain-${randomBytes(6).toString('hex')}`
    const { deps, tenant, entries } = await encryptedQueue(5, marker)
    for (const e of entries) {
      expect(e.encrypted).toBe(true)
      expect(e.payloadText).not.toContain(marker)
      const [version, kid, iv, ct, tag] = e.payloadText.split('.')
      expect(version).toBe('v1')
      expect(kid).toMatch(/^[0-9a-f]{8}$/)
      expect(Buffer.from(iv!, 'base64url')).toHaveLength(12)
      expect(Buffer.from(ct!, 'base64url').length).toBeGreaterThan(0)
      expect(Buffer.from(tag!, 'base64url')).toHaveLength(16)
    }
    const keys = await deps.redis.keys(`${deps.keys.prefix}:*${tenant}*`)
    for (const key of keys) {
      const type = await deps.redis.type(key)
      const dump =
        type === 'stream'
          ? JSON.stringify(await deps.redis.xrange(key, '-', '+'))
          : type === 'hash'
            ? JSON.stringify(await deps.redis.hgetall(key))
            : ''
      expect(dump).not.toContain(marker)
    }
  })

  test('a payload copied to another tenant’s queue at Redis level decrypts 0 times in 50, and the API shows none of it', async () => {
    const marker = `tenant-a-${randomBytes(6).toString('hex')}`
    const a = await encryptedQueue(50, marker)
    // Tenant B has a queue of the same name, encrypted too, so only the tenant differs.
    const b = await encryptedQueue(1, 'b-own')
    for (const e of a.entries) {
      await b.deps.redis.xadd(b.stream, '*', 'i', e.messageId, 'p', e.payloadText, 'e', '1')
    }
    const copied = (await b.deps.redis.xrange(b.stream, '-', '+'))
      .slice(b.entries.length)
      .map(([id, fields]) => decodeFields(id, fields))
    expect(copied).toHaveLength(50)
    const failures = copied.filter((e) =>
      refused(b.deps.cipher, e.payloadText, {
        tenantId: b.tenant,
        queueId: b.queue.id,
        messageId: e.messageId,
      })
    )
    expect(failures).toHaveLength(50)

    // An operator still sees the queue: the copies show no payload, B's own message shows its.
    const peek = await call(b.app, 'GET', `${Q}/sealed/messages?limit=100`, { tenant: b.tenant })
    expect(peek.status).toBe(200)
    expect(JSON.stringify(peek.body)).not.toContain(marker)
    const payloads = peek.body.items.map((m: { payload: unknown }) => m.payload)
    expect(payloads.filter((p: unknown) => p === null)).toHaveLength(50)
    expect(payloads).toContainEqual({ secret: 'b-own-0' })

    // A consumer gets B's own message; the 50 that cannot be opened go to the dead-letter
    // queue at once instead of failing every pull.
    const sub = await call(b.app, 'POST', `${BASE}/subscriptions`, {
      tenant: b.tenant,
      body: {
        queue: 'sealed',
        consumerGroup: 'g',
        consumerName: 'c',
        subscriptionType: 'redis_consumer',
        offsetResetPolicy: 'earliest',
      },
    })
    const pulled = await call(b.app, 'POST', `${BASE}/subscriptions/${sub.body.id}/pull`, {
      tenant: b.tenant,
      body: { max: 100 },
    })
    expect(pulled.status).toBe(200)
    expect(pulled.body.messages.map((m: { payload: unknown }) => m.payload)).toEqual([
      { secret: 'b-own-0' },
    ])
    const dead = await call(b.app, 'GET', `${Q}/sealed.dlq/messages?limit=100`, {
      tenant: b.tenant,
    })
    expect(dead.body.items).toHaveLength(50)
    expect(dead.body.items[0].headers).toMatchObject({
      'x-mq-payload-unreadable': 'could not be decrypted or parsed',
      'x-mq-dead-letter-reason': 'payload could not be decrypted or parsed',
    })
    expect(JSON.stringify(dead.body)).not.toContain(marker)
  })

  test('a payload copied to another message of the same queue decrypts 0 times in 49', async () => {
    const { deps, tenant, queue, stream, entries } = await encryptedQueue(50, 'swap')
    // Each message's ciphertext written under the next message's id, as a Redis-level edit would.
    for (let i = 0; i + 1 < entries.length; i++) {
      await deps.redis.xadd(
        stream,
        '*',
        'i',
        entries[i + 1]!.messageId,
        'p',
        entries[i]!.payloadText,
        'e',
        '1'
      )
    }
    const forged = (await deps.redis.xrange(stream, '-', '+'))
      .slice(entries.length)
      .map(([id, fields]) => decodeFields(id, fields))
    expect(forged).toHaveLength(49)
    const ctx = (messageId: string) => ({ tenantId: tenant, queueId: queue.id, messageId })
    expect(
      forged.filter((e) => refused(deps.cipher, e.payloadText, ctx(e.messageId)))
    ).toHaveLength(49)
    // The originals still open: the failures come from the context, not a broken cipher.
    for (const e of entries)
      expect(refused(deps.cipher, e.payloadText, ctx(e.messageId))).toBe(false)
    // Same tenant and message id in another queue of the tenant: refused as well.
    const otherQueue = { tenantId: tenant, queueId: crypto.randomUUID(), messageId: 'm-0' }
    expect(refused(deps.cipher, entries[0]!.payloadText, otherQueue)).toBe(true)
  })

  test('flipping any one bit of iv, ciphertext or tag fails authentication (1,000 random cases)', () => {
    const cipher = new PayloadCipher([newKey()])
    const context = fc.record({
      tenantId: fc.uuid(),
      queueId: fc.uuid(),
      messageId: fc.string({ minLength: 1, maxLength: 40 }),
    })
    fc.assert(
      fc.property(fc.jsonValue(), context, fc.nat(), (payload, ctx, pick) => {
        const envelope = cipher.encrypt(JSON.stringify(payload), ctx)
        const [version, kid, ...parts] = envelope.split('.')
        const bytes = parts.map((p) => Buffer.from(p, 'base64url'))
        const total = bytes.reduce((n, b) => n + b.length * 8, 0)
        let bit = pick % total
        const target = bytes.findIndex((b) => {
          if (bit < b.length * 8) return true
          bit -= b.length * 8
          return false
        })
        bytes[target]![bit >> 3]! ^= 1 << (bit & 7)
        const tampered = [version, kid, ...bytes.map((b) => b.toString('base64url'))].join('.')
        return refused(cipher, tampered, ctx) && !refused(cipher, envelope, ctx)
      }),
      { numRuns: 1000 }
    )
  })

  test('flipping any one bit of the stored envelope string is refused (1,000 random cases)', () => {
    const cipher = new PayloadCipher([newKey()])
    const ctx = { tenantId: newTenant(), queueId: newTenant(), messageId: 'm' }
    fc.assert(
      fc.property(fc.jsonValue(), fc.nat(), fc.integer({ min: 0, max: 6 }), (payload, at, bit) => {
        const envelope = cipher.encrypt(JSON.stringify(payload), ctx)
        const i = at % envelope.length
        const flipped = String.fromCharCode(envelope.charCodeAt(i) ^ (1 << bit))
        return refused(cipher, envelope.slice(0, i) + flipped + envelope.slice(i + 1), ctx)
      }),
      { numRuns: 1000 }
    )
  })

  test('a changed version, kid or part count is refused', () => {
    const cipher = new PayloadCipher([newKey()])
    const ctx = { tenantId: newTenant(), queueId: newTenant(), messageId: 'm' }
    const envelope = cipher.encrypt('{"a":1}', ctx)
    const [, kid, iv, ct, tag] = envelope.split('.')
    for (const bad of [
      ['v2', kid, iv, ct, tag],
      ['v1', '00000000', iv, ct, tag],
      ['v1', kid, iv, ct],
      ['v1', kid, iv, ct, tag, tag],
      ['v1', kid, '', ct, tag],
      ['v1', kid, iv, ct, ''],
    ]) {
      expect(refused(cipher, bad.join('.'), ctx)).toBe(true)
    }
    expect(refused(cipher, 'not an envelope', ctx)).toBe(true)
  })

  test('regression: a tag spelled another way that decodes to the same bytes is refused', () => {
    // Found by the string bit-flip property: Node's base64url decoder ignores the spare low bits
    // of a segment's last character and skips characters outside the alphabet.
    const cipher = new PayloadCipher([newKey()])
    const ctx = { tenantId: newTenant(), queueId: newTenant(), messageId: 'm' }
    const envelope = cipher.encrypt('{}', ctx)
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
    const last = alphabet.indexOf(envelope.at(-1)!)
    const sibling = envelope.slice(0, -1) + alphabet[last ^ 1]
    const tag = (e: string) => Buffer.from(e.split('.')[4]!, 'base64url')
    expect(tag(sibling).equals(tag(envelope))).toBe(true)
    expect(refused(cipher, sibling, ctx)).toBe(true)
    expect(refused(cipher, `${envelope}!`, ctx)).toBe(true)
    expect(refused(cipher, envelope, ctx)).toBe(false)
  })

  test('1,000,000 encryptions use 1,000,000 different IVs', () => {
    const cipher = new PayloadCipher([newKey()])
    const ctx = { tenantId: newTenant(), queueId: newTenant(), messageId: 'm' }
    const N = 1_000_000
    const ivs = new Set<string>()
    const started = performance.now()
    for (let i = 0; i < N; i++) ivs.add(cipher.encrypt('{}', ctx).split('.')[2]!)
    console.log(
      `S4: ${N} encryptions, ${N - ivs.size} IV collisions, ${(performance.now() - started).toFixed(0)} ms`
    )
    expect(ivs.size).toBe(N)
  }, 120_000)

  test('after a rotation the old kid still decrypts and new payloads use the new kid', () => {
    const [oldKey, newKeyValue] = [newKey(), newKey()]
    const ctx = { tenantId: newTenant(), queueId: newTenant(), messageId: 'm' }
    const before = new PayloadCipher([oldKey]).encrypt('"sealed before"', ctx)
    const rotated = new PayloadCipher([newKeyValue, oldKey])
    expect(rotated.decrypt(before, ctx)).toBe('"sealed before"')
    const after = rotated.encrypt('"sealed after"', ctx)
    expect(after.split('.')[1]).toBe(kidOf(newKeyValue))
    expect(before.split('.')[1]).toBe(kidOf(oldKey))
    // Only the previous key list keeps old payloads readable.
    expect(refused(new PayloadCipher([newKeyValue]), before, ctx)).toBe(true)
    expect(refused(new PayloadCipher([oldKey]), after, ctx)).toBe(true)
  })

  describe('key rotation through MQ_MASTER_KEYS_PREVIOUS', () => {
    const opened: Deps[] = []
    afterEach(async () => {
      for (const deps of opened.splice(0)) await deps.close()
    })

    /** A whole service (its own connections) on the shared stores and key prefix. */
    async function service(prefix: string, env: Record<string, string>) {
      const deps = await buildDeps(
        testConfig({ REDIS_KEY_PREFIX: prefix, ...env }),
        createLogger('silent'),
        { resolveHost: testResolver }
      )
      opened.push(deps)
      return { deps, app: createApp(deps) }
    }

    test('messages sealed under the old key still open after the rotation; new ones use the new kid', async () => {
      const prefix = (await sharedDeps()).config.REDIS_KEY_PREFIX
      const [oldKey, currentKey] = [newKey(), newKey()]
      const tenant = newTenant()
      const before = await service(prefix, { MQ_MASTER_KEY: oldKey })
      await call(before.app, 'POST', Q, { tenant, body: { name: 'rotating', encrypted: true } })
      const first = await call(before.app, 'POST', `${BASE}/publish`, {
        tenant,
        body: { queue: 'rotating', payload: { n: 'before' } },
      })
      expect(first.status).toBe(201)

      const after = await service(prefix, {
        MQ_MASTER_KEY: currentKey,
        MQ_MASTER_KEYS_PREVIOUS: oldKey,
      })
      const second = await call(after.app, 'POST', `${BASE}/publish`, {
        tenant,
        body: { queue: 'rotating', payload: { n: 'after' } },
      })
      expect(second.status).toBe(201)

      const peek = await call(after.app, 'GET', `${Q}/rotating/messages`, { tenant })
      expect(peek.status).toBe(200)
      expect(peek.body.items.map((m: { payload: unknown }) => m.payload)).toEqual([
        { n: 'before' },
        { n: 'after' },
      ])
      const stream = after.deps.keys.partition(tenant, 'rotating', 0, 'stream')
      const kids = (await after.deps.redis.xrange(stream, '-', '+')).map(
        ([id, fields]) => decodeFields(id, fields).payloadText.split('.')[1]
      )
      expect(kids).toEqual([kidOf(oldKey), kidOf(currentKey)])
    })
  })
})
