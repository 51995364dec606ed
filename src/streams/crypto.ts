import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto'

const VERSION = 'v1'
const IV_BYTES = 12
const TAG_BYTES = 16

/**
 * The bytes of a base64url string written the one way `encrypt` writes it, else null. Node's
 * decoder skips characters outside the alphabet and ignores the spare bits of the last one, so
 * without this check several stored strings would open as the same envelope: a bit flipped in
 * Redis could go unnoticed.
 */
function strictBase64url(text: string): Buffer | null {
  const bytes = Buffer.from(text, 'base64url')
  return bytes.toString('base64url') === text ? bytes : null
}

/** Where a ciphertext belongs; bound into it as additional data, so it decrypts nowhere else. */
export interface CipherContext {
  tenantId: string
  queueId: string
  messageId: string
}

/**
 * AES-256-GCM for the payloads of `encrypted` queues. Each tenant has its own key, derived
 * from the master key with HKDF (salt: tenant id), so one tenant's key opens nothing of
 * another's. Envelope: `v1.<kid>.<iv>.<ciphertext>.<tag>` in base64url, `kid` naming the
 * master key so older keys can still decrypt after a rotation.
 */
export class PayloadCipher {
  private readonly masters = new Map<string, Buffer>()
  private readonly tenantKeys = new Map<string, Buffer>()
  private readonly currentKid: string

  /** @param masterKeys base64 keys of at least 32 bytes; the first encrypts, all decrypt. */
  constructor(masterKeys: string[]) {
    const [first] = masterKeys
    if (!first) throw new Error('PayloadCipher needs a master key')
    for (const key of masterKeys) {
      const bytes = Buffer.from(key, 'base64')
      if (bytes.length < 32) throw new Error('a master key must be at least 32 bytes')
      this.masters.set(createHash('sha256').update(bytes).digest('hex').slice(0, 8), bytes)
    }
    this.currentKid = [...this.masters.keys()][0]!
  }

  private tenantKey(kid: string, tenantId: string): Buffer {
    const cacheKey = `${kid}:${tenantId}`
    let key = this.tenantKeys.get(cacheKey)
    if (!key) {
      const master = this.masters.get(kid)
      if (!master) throw new Error(`unknown key id ${kid}`)
      key = Buffer.from(hkdfSync('sha256', master, tenantId, 'mq-payload-v1', 32))
      this.tenantKeys.set(cacheKey, key)
    }
    return key
  }

  private static aad(ctx: CipherContext, kid: string): Buffer {
    return Buffer.from(`${ctx.tenantId}|${ctx.queueId}|${ctx.messageId}|${kid}`)
  }

  encrypt(plaintext: string, ctx: CipherContext): string {
    const kid = this.currentKid
    const iv = randomBytes(IV_BYTES)
    const cipher = createCipheriv('aes-256-gcm', this.tenantKey(kid, ctx.tenantId), iv, {
      authTagLength: TAG_BYTES,
    })
    cipher.setAAD(PayloadCipher.aad(ctx, kid))
    const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
    const b64 = (b: Buffer) => b.toString('base64url')
    return [VERSION, kid, b64(iv), b64(ct), b64(cipher.getAuthTag())].join('.')
  }

  /** @throws Error when the envelope is malformed, from another context, or tampered with. */
  decrypt(envelope: string, ctx: CipherContext): string {
    const parts = envelope.split('.')
    const [version, kid] = parts
    const [iv, ct, tag] = parts.slice(2).map(strictBase64url)
    if (
      parts.length !== 5 ||
      version !== VERSION ||
      !kid ||
      iv?.length !== IV_BYTES ||
      !ct ||
      tag?.length !== TAG_BYTES
    ) {
      throw new Error('not an encrypted payload')
    }
    const decipher = createDecipheriv('aes-256-gcm', this.tenantKey(kid, ctx.tenantId), iv, {
      authTagLength: TAG_BYTES,
    })
    decipher.setAAD(PayloadCipher.aad(ctx, kid))
    decipher.setAuthTag(tag)
    return Buffer.concat([decipher.update(ct), decipher.final()]).toString('utf8')
  }
}
