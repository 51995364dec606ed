import { describe, expect, test } from 'bun:test'
import { createHmac } from 'node:crypto'
import { ReceiptCodec } from '../../src/streams/codec'

const key = Buffer.alloc(32, 7)
const tenant = crypto.randomUUID()
const delivery = {
  subscriptionId: crypto.randomUUID(),
  partition: 3,
  streamId: '1764621342123-57',
  deliveryCount: 2,
}

/** A receipt as made before receipts carried the message id: four parts, node:crypto's HMAC. */
function oldReceipt(tenantId: string): string {
  const body = `${delivery.subscriptionId}.${delivery.partition}.${delivery.streamId}.${delivery.deliveryCount}`
  const mac = createHmac('sha256', key).update(`${tenantId}|${body}`).digest().subarray(0, 16)
  return `${Buffer.from(body).toString('base64url')}.${mac.toString('base64url')}`
}

describe('receipts', () => {
  test('carry the message id, dots and all', () => {
    const codec = new ReceiptCodec(key)
    const r = { ...delivery, messageId: 'order.2026.000123' }
    expect(codec.decode(tenant, codec.encode(tenant, r))).toEqual(r)
  })

  test('one made before they carried the message id still reads, without one', () => {
    const codec = new ReceiptCodec(key)
    expect(codec.decode(tenant, oldReceipt(tenant))).toEqual(delivery)
    expect(codec.encode(tenant, delivery)).toBe(oldReceipt(tenant))
  })

  test("another tenant's, another key's or a tampered one reads as nothing", () => {
    const codec = new ReceiptCodec(key)
    const receipt = codec.encode(tenant, { ...delivery, messageId: 'm-1' })
    expect(codec.decode(crypto.randomUUID(), receipt)).toBeNull()
    expect(new ReceiptCodec(Buffer.alloc(32, 8)).decode(tenant, receipt)).toBeNull()
    const [body, mac] = receipt.split('.') as [string, string]
    const other = Buffer.from(Buffer.from(body, 'base64url').toString().replace('.2.', '.3.'))
    expect(codec.decode(tenant, `${other.toString('base64url')}.${mac}`)).toBeNull()
    expect(codec.decode(tenant, 'garbage')).toBeNull()
  })
})
