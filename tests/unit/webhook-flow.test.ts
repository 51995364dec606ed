import { describe, expect, test } from 'bun:test'
import fc from 'fast-check'
import type { ReceiptData } from '../../src/domain/consume'
import { Batch, Slots } from '../../src/worker/webhook-flow'

const receipt = (n: number): ReceiptData => ({
  subscriptionId: 's',
  partition: 0,
  streamId: `${n}-0`,
  deliveryCount: 1,
})

describe('webhook flow control', () => {
  test('Slots never hands out more than it holds, and wakes waiters when slots come back', async () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 20 }),
        fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 8 })), { maxLength: 50 }),
        (capacity, steps) => {
          const slots = new Slots(capacity)
          let held = 0
          for (const [take, n] of steps) {
            if (take) {
              const got = slots.take(n)
              expect(got).toBe(Math.min(n, capacity - held))
              held += got
            } else {
              const back = Math.min(n, held)
              slots.give(back)
              held -= back
            }
          }
          expect(slots.take(capacity + 1)).toBe(capacity - held)
        }
      ),
      { numRuns: 200 }
    )
    const slots = new Slots(1)
    slots.take(1)
    let woken = false
    const freed = slots.freed().then(() => {
      woken = true
    })
    await Bun.sleep(1)
    expect(woken).toBe(false)
    slots.give(1)
    await freed
    expect(woken).toBe(true)
  })

  test('Batch sends every receipt exactly once, one call at a time, batching what waits', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 40 }),
        fc.array(fc.boolean(), { maxLength: 40 }),
        async (gaps, failures) => {
          const calls: number[][] = []
          let inCall = 0
          let overlapped = false
          const batch = new Batch<ReceiptData>(async (receipts) => {
            if (inCall > 0) overlapped = true
            inCall++
            calls.push(receipts.map((r) => Number.parseInt(r.streamId, 10)))
            await Bun.sleep(1)
            inCall--
            if (failures[calls.length - 1]) throw new Error('settle failed')
          })
          const added: Array<Promise<'ok' | 'failed'>> = []
          for (const [i, gap] of gaps.entries()) {
            added.push(
              batch.add(receipt(i)).then(
                () => 'ok' as const,
                () => 'failed' as const
              )
            )
            if (gap > 0) await Bun.sleep(gap)
          }
          const results = await Promise.all(added)
          expect(overlapped).toBe(false)
          expect(calls.flat()).toEqual(gaps.map((_, i) => i))
          // Each add settles as the call that carried it did.
          calls.forEach((ids, c) => {
            for (const id of ids) expect(results[id]).toBe(failures[c] ? 'failed' : 'ok')
          })
        }
      ),
      { numRuns: 30 }
    )
  })

  test('Batch: the first ack goes at once, what arrives meanwhile goes in one call', async () => {
    const calls: number[] = []
    const batch = new Batch<ReceiptData>(async (receipts) => {
      calls.push(receipts.length)
      await Bun.sleep(5)
    })
    await Promise.all(Array.from({ length: 10 }, (_, i) => batch.add(receipt(i))))
    expect(calls).toEqual([1, 9])
  })
})
