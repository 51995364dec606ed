import { describe, expect, test } from 'bun:test'
import diagnosticsChannel from 'node:diagnostics_channel'
import { createLogger } from '../../src/observability/logger'
import { createRedis } from '../../src/streams/redis'
import { ensureTracingChannelHasSubscribers } from '../../src/streams/tracing-channel'
import { currentInfra } from '../helpers/harness'

describe('tracing channels', () => {
  test('hasSubscribers is false until a subscriber comes, and true while one is there', () => {
    ensureTracingChannelHasSubscribers()
    const channel = diagnosticsChannel.tracingChannel('mq:test:has-subscribers')
    expect(channel.hasSubscribers).toBe(false)
    const handlers = { asyncEnd: () => {} }
    channel.subscribe(handlers)
    expect(channel.hasSubscribers).toBe(true)
    channel.unsubscribe(handlers)
    expect(channel.hasSubscribers).toBe(false)
  })

  test('ioredis traces its commands for a subscriber only', async () => {
    const { redisUrl, redisClusterNodes } = currentInfra()
    const client = createRedis(
      { url: redisUrl, clusterNodes: redisClusterNodes ? redisClusterNodes.split(',') : [] },
      'worker',
      createLogger('silent')
    )
    const channel = diagnosticsChannel.tracingChannel('ioredis:command')
    const seen: string[] = []
    const handlers = { start: (ctx: unknown) => seen.push((ctx as { command: string }).command) }
    try {
      await client.exists('mq:test:untraced')
      expect(seen).toEqual([])
      channel.subscribe(handlers)
      await client.exists('mq:test:traced')
      expect(seen).toEqual(['exists'])
    } finally {
      channel.unsubscribe(handlers)
      client.disconnect()
    }
  })
})
