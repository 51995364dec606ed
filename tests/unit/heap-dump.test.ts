import { expect, test } from 'bun:test'
import { heapDump } from '../../src/observability/heap-dump'

test('a heap dump counts objects by type and names what each socket talks to', async () => {
  const server = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response('x') })
  try {
    const held = Array.from({ length: 1000 }, () => new AbortController())
    const res = await fetch(server.url, { keepalive: true })
    await res.text()
    const dump = heapDump()
    expect(dump.objectTypeCounts.AbortController).toBeGreaterThanOrEqual(held.length)
    expect(dump.descriptors[`tcp:listen:${server.port}`]).toBe(1)
    expect(dump.descriptors[`tcp:in:${server.port}`]).toBeGreaterThanOrEqual(1)
    expect(dump.descriptors[`tcp:out:${server.port}`]).toBeGreaterThanOrEqual(1)
    expect(dump.rssBytes).toBeGreaterThan(0)
  } finally {
    server.stop(true)
  }
})
