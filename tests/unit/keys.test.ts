import { afterAll, describe, expect, test } from 'bun:test'
import { Keys, PARTITION_PARTS, type PartitionPart } from '../../src/streams/keys'
import { newTenant, sharedDeps } from '../helpers/harness'

/** The part of a key Redis Cluster hashes: the first non-empty `{…}`, else the whole key. */
function hashTag(key: string): string {
  const open = key.indexOf('{')
  if (open === -1) return key
  const close = key.indexOf('}', open + 1)
  if (close === -1 || close === open + 1) return key
  return key.slice(open + 1, close)
}

const PARTS = Object.keys(PARTITION_PARTS) as PartitionPart[]

/** Every key the builder makes for one partition. */
function partitionKeys(keys: Keys, tenant: string, queue: string, partition: number): string[] {
  return [
    ...PARTS.map((part) => keys.partition(tenant, queue, partition, part)),
    keys.dedup(tenant, queue, partition, 'msg-1'),
    keys.dedup(tenant, queue, partition, 'msg-{with}-braces'),
    keys.inflight(tenant, queue, partition, 'billing'),
  ]
}

describe('keys', () => {
  const keys = new Keys('mq')

  test('every key of one partition carries the prefix and shares one hash tag', () => {
    const tenant = newTenant()
    const all = partitionKeys(keys, tenant, 'orders', 3)
    expect(new Set(all.map(hashTag))).toEqual(new Set([`${tenant}:orders:3`]))
    for (const key of all) expect(key).toStartWith(`mq:{${tenant}:orders:3}:`)
    expect(new Set(all).size).toBe(all.length)
  })

  test('partitions of one queue have different hash tags, so they can live on different nodes', () => {
    const tenant = newTenant()
    const tags = [0, 1, 2, 10, 11].map((p) => hashTag(keys.partition(tenant, 'q', p, 'stream')))
    expect(new Set(tags).size).toBe(5)
  })

  test('different tenants, queues, partitions and prefixes never share a key or a tag', () => {
    const tenants = [newTenant(), newTenant()]
    const queues = ['a', 'a.b', 'a-b', 'a_b', 'ab', 'a1', 'A', '1', '10', 'orders', 'orders.dlq']
    const partitions = [0, 1, 10]
    const seenKeys = new Map<string, string>()
    const seenTags = new Map<string, string>()
    for (const prefix of ['mq', 'mq2']) {
      const k = new Keys(prefix)
      for (const tenant of tenants) {
        for (const queue of queues) {
          for (const partition of partitions) {
            const owner = `${prefix}/${tenant}/${queue}/${partition}`
            for (const key of partitionKeys(k, tenant, queue, partition)) {
              expect(seenKeys.get(key) ?? owner).toBe(owner)
              seenKeys.set(key, owner)
            }
            const tag = `${prefix}|${hashTag(k.partition(tenant, queue, partition, 'stream'))}`
            expect(seenTags.get(tag) ?? owner).toBe(owner)
            seenTags.set(tag, owner)
          }
        }
      }
    }
    expect(seenTags.size).toBe(2 * tenants.length * queues.length * partitions.length)
  })

  test('tenant-wide and process-wide keys stay apart from partition keys', () => {
    const tenant = newTenant()
    const sub = newTenant()
    const counters = keys.subscriptionCounters(tenant, sub)
    expect(hashTag(counters)).toBe(`${tenant}:${sub}`)
    expect(partitionKeys(keys, tenant, 'q', 0)).not.toContain(counters)
    expect(keys.healthStream(42)).toBe('mq:health:42')
    expect(keys.metadataChannel).toBe('mq:metadata-changed')
    expect(new Keys('other').metadataChannel).not.toBe(keys.metadataChannel)
  })

  test("a queue's dedup routes share one tag, which no partition and no other queue shares", () => {
    const tenant = newTenant()
    const routes = ['m1', 'm-{x}'].map((id) => keys.dedupRoute(tenant, 'orders', id))
    expect(new Set(routes.map(hashTag))).toEqual(new Set([`${tenant}:orders`]))
    const others = [0, 1, 10].flatMap((p) => partitionKeys(keys, tenant, 'orders', p).map(hashTag))
    expect(others).not.toContain(`${tenant}:orders`)
    expect(hashTag(keys.dedupRoute(tenant, 'orders.dlq', 'm1'))).not.toBe(`${tenant}:orders`)
    expect(keys.queuePattern(tenant, 'a*')).toBe(`mq:{${tenant}:a\\*}:*`)
  })

  test('partitionPattern escapes glob characters', () => {
    const tenant = '00000000-0000-0000-0000-000000000000'
    expect(keys.partitionPattern(tenant, 'a*b?[c]\\d', 0)).toBe(
      `mq:{${tenant}:a\\*b\\?\\[c\\]\\\\d:0}:*`
    )
    expect(keys.partitionPattern(tenant, 'orders', 2)).toBe(`mq:{${tenant}:orders:2}:*`)
  })

  describe('partitionPattern on a real Redis', () => {
    const written: string[] = []
    afterAll(async () => {
      if (written.length > 0) await (await sharedDeps()).redis.del(...written)
    })

    /** Every key SCAN MATCH finds for `pattern`. */
    async function scan(pattern: string): Promise<string[]> {
      const { redis } = await sharedDeps()
      const found: string[] = []
      let cursor = '0'
      do {
        const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
        cursor = next
        found.push(...batch)
      } while (cursor !== '0')
      return found.sort()
    }

    test('matches exactly one partition’s keys, even for names full of glob characters', async () => {
      const { redis } = await sharedDeps()
      const k = new Keys(`kt${Math.random().toString(36).slice(2, 8)}`)
      const tenant = newTenant()
      // Names the API refuses, to show the pattern holds even if validation ever loosens.
      const queues = ['a*', 'ab', 'a?', 'a[b]', 'ax', 'a\\', 'q', 'q.x']
      for (const queue of queues) {
        for (const partition of [1, 11]) {
          for (const key of partitionKeys(k, tenant, queue, partition)) {
            await redis.set(key, '1')
            written.push(key)
          }
        }
      }
      for (const queue of queues) {
        for (const partition of [1, 11]) {
          const expected = partitionKeys(k, tenant, queue, partition).sort()
          expect(await scan(k.partitionPattern(tenant, queue, partition))).toEqual(expected)
        }
      }
      expect(await scan(k.partitionPattern(newTenant(), 'q', 1))).toEqual([])
    })
  })
})
