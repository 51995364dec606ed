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
/** A MAC in base64url: 16 bytes are 22 characters, unpadded. */
const MAC_CHARS = 22

/**
 * Receipts are opaque to clients and bound to the tenant: an HMAC over the tenant id and the
 * delivery makes a forged receipt, or one replayed by another tenant, fail verification. The
 * message id comes last, so a receipt without one (made before receipts carried it) still
 * reads, and an instance that knows only the first four parts reads the new ones.
 *
 * Two receipts are made or read per message consumed, so the codec allocates little: the key
 * is set up once and its state copied per receipt, and MACs go through buffers of its own
 * (calls are synchronous, so nothing else uses them in between).
 */
export class ReceiptCodec {
  private readonly keyed: Bun.CryptoHasher
  /** Bun digests into at least 64 bytes; the MAC is the first 16 of the SHA-256. */
  private readonly digest = Buffer.alloc(64)
  private readonly computed = this.digest.subarray(0, MAC_BYTES)
  private readonly given = Buffer.alloc(MAC_BYTES)

  constructor(key: Buffer) {
    this.keyed = new Bun.CryptoHasher('sha256', key)
  }

  /** @returns the MAC, in a buffer the next call overwrites. */
  private mac(tenantId: string, body: string): Buffer {
    const hmac = this.keyed.copy()
    hmac.update(`${tenantId}|${body}`)
    hmac.digest(this.digest)
    return this.computed
  }

  encode(tenantId: string, r: ReceiptData): string {
    let body = `${r.subscriptionId}.${r.partition}.${r.streamId}.${r.deliveryCount}`
    if (r.messageId !== undefined) body += `.${r.messageId}`
    return `${Buffer.from(body).toString('base64url')}.${this.mac(tenantId, body).toString('base64url')}`
  }

  /** @returns the receipt, or null when it is malformed, forged or another tenant's. */
  decode(tenantId: string, receipt: string): ReceiptData | null {
    const dot = receipt.indexOf('.')
    const macPart = receipt.slice(dot + 1)
    // Base64 decoding skips characters that are not base64: fewer than 16 bytes then.
    if (dot <= 0 || macPart.length !== MAC_CHARS) return null
    if (this.given.write(macPart, 'base64url') !== MAC_BYTES) return null
    const body = Buffer.from(receipt.slice(0, dot), 'base64url').toString('utf8')
    if (!timingSafeEqual(this.given, this.mac(tenantId, body))) return null
    // A message id may itself hold dots: it is everything after the fourth.
    const [subscriptionId, partition, streamId, count, ...messageId] = body.split('.')
    if (!subscriptionId || !partition || !streamId || !count) return null
    const r: ReceiptData = {
      subscriptionId,
      partition: Number(partition),
      streamId,
      deliveryCount: Number(count),
    }
    if (messageId.length > 0) r.messageId = messageId.join('.')
    return r
  }
}
