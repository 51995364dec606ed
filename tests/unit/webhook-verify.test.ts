import { describe, expect, test } from 'bun:test'
import { Webhook } from 'standardwebhooks'
import { verifyWebhook } from '../../src/client'

const secret = `whsec_${Buffer.from('0123456789abcdef0123456789abcdef').toString('base64')}`
const body = '{"order":42,"note":"ünïcode"}'
const now = Date.UTC(2026, 10, 25, 12, 0, 0)

/** Headers as the reference implementation signs them. */
function signed(id = 'msg_1', at = new Date(now), payload = body, key = secret) {
  return {
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': new Webhook(key).sign(id, at, payload),
  }
}

describe('verifyWebhook', () => {
  test('accepts what the Standard Webhooks reference signs, as a record or as Headers', () => {
    expect(verifyWebhook(secret, signed(), body, { now })).toBe(true)
    expect(verifyWebhook(secret, new Headers(signed()), body, { now })).toBe(true)
    expect(verifyWebhook(secret, signed(), new TextEncoder().encode(body), { now })).toBe(true)
    const upper = Object.fromEntries(Object.entries(signed()).map(([k, v]) => [k.toUpperCase(), v]))
    expect(verifyWebhook(secret, upper, body, { now })).toBe(true)
  })

  test('agrees with the reference verifier on what it signs for us', () => {
    const headers = signed('msg_2', new Date())
    expect(() => new Webhook(secret).verify(body, headers)).not.toThrow()
    expect(verifyWebhook(secret, headers, body)).toBe(true)
  })

  test('accepts when any of several signatures matches (secret rotation)', () => {
    const headers = signed()
    const other = signed(
      'msg_1',
      new Date(now),
      body,
      `whsec_${Buffer.from('x'.repeat(32)).toString('base64')}`
    )
    headers['webhook-signature'] = `${other['webhook-signature']} ${headers['webhook-signature']}`
    expect(verifyWebhook(secret, headers, body, { now })).toBe(true)
  })

  test('refuses a changed body, id or timestamp, another secret, another version', () => {
    const headers = signed()
    expect(verifyWebhook(secret, headers, `${body} `, { now })).toBe(false)
    expect(verifyWebhook(secret, { ...headers, 'webhook-id': 'msg_2' }, body, { now })).toBe(false)
    const later = String(Number(headers['webhook-timestamp']) + 1)
    expect(verifyWebhook(secret, { ...headers, 'webhook-timestamp': later }, body, { now })).toBe(
      false
    )
    const stranger = `whsec_${Buffer.from('y'.repeat(32)).toString('base64')}`
    expect(verifyWebhook(stranger, headers, body, { now })).toBe(false)
    const v2 = headers['webhook-signature'].replace(/^v1,/, 'v2,')
    expect(verifyWebhook(secret, { ...headers, 'webhook-signature': v2 }, body, { now })).toBe(
      false
    )
    expect(verifyWebhook(secret, { ...headers, 'webhook-signature': 'v1,' }, body, { now })).toBe(
      false
    )
  })

  test('refuses pushes older or newer than the tolerance (5 minutes by default)', () => {
    const old = signed('msg_1', new Date(now - 301_000))
    expect(verifyWebhook(secret, old, body, { now })).toBe(false)
    expect(verifyWebhook(secret, signed('msg_1', new Date(now - 299_000)), body, { now })).toBe(
      true
    )
    expect(verifyWebhook(secret, signed('msg_1', new Date(now + 301_000)), body, { now })).toBe(
      false
    )
    expect(verifyWebhook(secret, old, body, { now, toleranceS: 600 })).toBe(true)
  })

  test('refuses missing or malformed headers', () => {
    const headers: Record<string, string> = signed()
    for (const name of Object.keys(headers)) {
      const { [name]: _dropped, ...rest } = headers
      expect(verifyWebhook(secret, rest, body, { now })).toBe(false)
    }
    expect(verifyWebhook(secret, { ...headers, 'webhook-timestamp': '1e9' }, body, { now })).toBe(
      false
    )
  })
})
