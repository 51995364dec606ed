import { timingSafeEqual } from 'node:crypto'
import type { ReceiptData } from '../domain/consume-deps'
import type { StoredMessage } from '../domain/messages'
import { STREAM_FIELDS } from './fields'

const F = STREAM_FIELDS

/** Stream fields of a message, as a flat field/value list for XADD. */
export function encodeFields(m: StoredMessage): string[] {
  const out: string[] = [F.messageId, m.messageId, F.payloadText, m.payloadText]
  if (m.encrypted) out.push(F.encrypted, '1')
  if (Object.keys(m.headers).length > 0) out.push(F.headers, JSON.stringify(m.headers))
  if (m.key !== null) out.push(F.key, m.key)
  if (m.correlationId !== null) out.push(F.correlationId, m.correlationId)
  if (m.traceId !== null) out.push(F.traceId, m.traceId)
  if (m.expiresAt !== null) out.push(F.expiresAt, String(m.expiresAt))
  if (m.publishedAt !== null) out.push(F.publishedAt, String(m.publishedAt))
  return out
}

/** The time part of a stream id (`<ms>-<seq>`). */
export const streamIdTime = (streamId: string): number =>
  Number(streamId.slice(0, streamId.indexOf('-')))

/**
 * Reads a stream entry back. `publishedAt` is always set: its field, else the entry id's
 * time.
 */
export function decodeFields(
  streamId: string,
  fields: string[]
): StoredMessage & { publishedAt: number } {
  const f: Record<string, string> = {}
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!
  const headers = f[F.headers]
  return {
    messageId: f[F.messageId] ?? streamId,
    payloadText: f[F.payloadText] ?? 'null',
    encrypted: f[F.encrypted] === '1',
    headers: headers ? (JSON.parse(headers) as Record<string, string>) : {},
    key: f[F.key] ?? null,
    correlationId: f[F.correlationId] ?? null,
    traceId: f[F.traceId] ?? null,
    expiresAt: f[F.expiresAt] ? Number(f[F.expiresAt]) : null,
    publishedAt: f[F.publishedAt] ? Number(f[F.publishedAt]) : streamIdTime(streamId),
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
