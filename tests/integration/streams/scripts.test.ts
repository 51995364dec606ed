import { describe, expect, test } from 'bun:test'
import { SCRIPTS } from '../../../src/streams/scripts'
import { Trimmer } from '../../../src/worker/trimmer'
import { call, newTenant, sharedDeps, testApp } from '../../helpers/harness'

describe('Lua scripts', () => {
  test('every registered script compiles on the server, includes expanded', async () => {
    const { redis } = await sharedDeps()
    for (const [name, script] of Object.entries(SCRIPTS)) {
      expect(script.lua).not.toContain('-- @include')
      const sha = await (redis as import('ioredis').Redis).script('LOAD', script.lua)
      expect({ name, sha }).toEqual({ name, sha: expect.stringMatching(/^[0-9a-f]{40}$/) })
    }
  })
})

describe('trimming', () => {
  async function setup(retentionMs = 3_600_000) {
    const app = await testApp()
    const deps = await sharedDeps()
    const tenant = newTenant()
    await call(app, 'POST', '/api/v1/mq/queues', { tenant, body: { name: 't', retentionMs } })
    const queue = (await deps.queueDeps.queues.get(tenant, 't'))!
    const stream = deps.keys.partition(tenant, 't', 0, 'stream')
    const index = deps.keys.partition(tenant, 't', 0, 'index')
    const publish = async (n: number) => {
      const res = await call(app, 'POST', '/api/v1/mq/publish/batch', {
        tenant,
        body: { queue: 't', messages: Array.from({ length: n }, (_, i) => ({ payload: i })) },
      })
      return res.body.results.map((r: { messageId: string }) => r.messageId) as string[]
    }
    const trimmer = new Trimmer({
      queues: async (after) => (after === null ? [queue] : []),
      trimPartition: (...args) => deps.messages.trimPartition(...args),
      repairDelayed: async () => {},
      sweepRemovedQueues: async () => 0,
      onFailure: () => {},
      ledgerGraceMs: null,
      logger: deps.logger,
    })
    return { deps, stream, index, publish, trimmer }
  }

  test('acknowledged entries go, pending and unread ones stay, with their index entries', async () => {
    const { deps, stream, index, publish, trimmer } = await setup()
    await deps.redis.xgroup('CREATE', stream, 'a', '0', 'MKSTREAM')
    await deps.redis.xgroup('CREATE', stream, 'b', '0')
    const ids = await publish(6)
    // Group a reads 4 and acks 3; group b reads and acks 5: entries 1-3 are done for both.
    const readA = (await deps.redis.xreadgroup(
      'GROUP',
      'a',
      'c',
      'COUNT',
      4,
      'STREAMS',
      stream,
      '>'
    )) as [string, Array<[string, string[]]>][]
    const aIds = readA[0]![1].map(([id]) => id)
    await deps.redis.xack(stream, 'a', ...aIds.slice(0, 3))
    const readB = (await deps.redis.xreadgroup(
      'GROUP',
      'b',
      'c',
      'COUNT',
      5,
      'STREAMS',
      stream,
      '>'
    )) as [string, Array<[string, string[]]>][]
    await deps.redis.xack(stream, 'b', ...readB[0]![1].map(([id]) => id))

    expect(await trimmer.sweep()).toBe(3)
    expect(await deps.redis.xlen(stream)).toBe(3)
    expect(await deps.redis.hmget(index, ...ids)).toEqual([
      null,
      null,
      null,
      aIds[3]!,
      expect.any(String),
      expect.any(String),
    ])
    expect(await trimmer.sweep()).toBe(0)
  })

  test('entries past retention go even when unread; without groups only they go', async () => {
    const { deps, stream, publish, trimmer } = await setup(60_000)
    await publish(4)
    expect(await trimmer.sweep()).toBe(0)
    expect(await trimmer.sweep(Date.now() + 61_000)).toBe(4)
    expect(await deps.redis.xlen(stream)).toBe(0)
  })
})
