import { timingSafeEqual } from 'node:crypto'
import type { ReceiptData } from '../domain/consume'
import type { StoredMessage } from '../domain/messages'

/*
 * Stream field names are one or two letters because every entry repeats them: `i` id, `p`
 * payload, `e` encrypted, `h` headers (JSON), `k` key, `c` correlation id, `t` trace id, `x`
 * expiry (ms), `ts` publish time (ms; only when it differs from the entry id's).
 */

/** Stream fields of a message, as a flat field/value list for XADD. */
export function encodeFields(m: StoredMessage): string[] {
  const out = ['i', m.messageId, 'p', m.payloadText]
  if (m.encrypted) out.push('e', '1')
  if (Object.keys(m.headers).length > 0) out.push('h', JSON.stringify(m.headers))
  if (m.key !== null) out.push('k', m.key)
  if (m.correlationId !== null) out.push('c', m.correlationId)
  if (m.traceId !== null) out.push('t', m.traceId)
  if (m.expiresAt !== null) out.push('x', String(m.expiresAt))
  if (m.publishedAt !== null) out.push('ts', String(m.publishedAt))
  return out
}

/** The time part of a stream id (`<ms>-<seq>`). */
export const streamIdTime = (streamId: string): number =>
  Number(streamId.slice(0, streamId.indexOf('-')))

/**
 * Reads a stream entry back. `publishedAt` is always set: the `ts` field, else the entry id's
 * time.
 */
export function decodeFields(
  streamId: string,
  fields: string[]
): StoredMessage & { publishedAt: number } {
  const f: Record<string, string> = {}
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!
  return {
    messageId: f.i ?? streamId,
    payloadText: f.p ?? 'null',
    encrypted: f.e === '1',
    headers: f.h ? (JSON.parse(f.h) as Record<string, string>) : {},
    key: f.k ?? null,
    correlationId: f.c ?? null,
    traceId: f.t ?? null,
    expiresAt: f.x ? Number(f.x) : null,
    publishedAt: f.ts ? Number(f.ts) : streamIdTime(streamId),
  }
}

const MAC_BYTES = 16

/**
 * Receipts are opaque to clients and bound to the tenant: an HMAC over the tenant id and the
 * delivery makes a forged receipt, or one replayed by another tenant, fail verification. The
 * message id comes last, so a receipt without one (made before receipts carried it) still
 * reads, and an instance that knows only the first four parts reads the new ones.
 */
export class ReceiptCodec {
  /** Keyed once and copied per receipt: setting the key up is most of an HMAC this short. */
  private readonly keyed: Bun.CryptoHasher

  constructor(key: Buffer) {
    this.keyed = new Bun.CryptoHasher('sha256', key)
  }

  private mac(tenantId: string, body: string): Buffer {
    const hmac = this.keyed.copy()
    hmac.update(`${tenantId}|${body}`)
    return hmac.digest().subarray(0, MAC_BYTES)
  }

  encode(tenantId: string, r: ReceiptData): string {
    const parts = [r.subscriptionId, r.partition, r.streamId, r.deliveryCount]
    if (r.messageId !== undefined) parts.push(r.messageId)
    const body = parts.join('.')
    return `${Buffer.from(body).toString('base64url')}.${this.mac(tenantId, body).toString('base64url')}`
  }

  /** @returns the receipt, or null when it is malformed, forged or another tenant's. */
  decode(tenantId: string, receipt: string): ReceiptData | null {
    const [bodyPart, macPart] = receipt.split('.')
    if (!bodyPart || !macPart) return null
    const body = Buffer.from(bodyPart, 'base64url').toString('utf8')
    const given = Buffer.from(macPart, 'base64url')
    if (given.length !== MAC_BYTES || !timingSafeEqual(given, this.mac(tenantId, body))) return null
    // A message id may itself hold dots: it is everything after the fourth.
    const [subscriptionId, partition, streamId, count, ...messageId] = body.split('.')
    if (!subscriptionId || !partition || !streamId || !count) return null
    return {
      subscriptionId,
      partition: Number(partition),
      streamId,
      deliveryCount: Number(count),
      ...(messageId.length > 0 ? { messageId: messageId.join('.') } : {}),
    }
  }
}
