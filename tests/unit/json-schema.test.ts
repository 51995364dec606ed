import { expect, test } from 'bun:test'
import { JsonSchemas } from '../../src/domain/json-schema'
import type { Queue } from '../../src/domain/queues'

const queue = (id: string, minimum: number) =>
  ({
    id,
    schema: { type: 'object', properties: { n: { type: 'number', minimum } } },
    updatedAt: new Date(1_000),
  }) as unknown as Queue

test('validators are kept for at most maxCompiled queues, and an evicted one is compiled again', () => {
  const schemas = new JsonSchemas(10)
  const registered = schemas.registered
  const queues = Array.from({ length: 30 }, (_, i) => queue(`q${i}`, i))
  for (const q of queues) expect(schemas.check(q, { n: 100 })).toEqual([])
  expect(schemas.kept).toBe(10)
  expect(schemas.registered).toBe(registered)
  // Only the last ten are kept: q5's is compiled again and still judges right.
  expect(schemas.check(queues[5]!, { n: 4 })).toEqual([{ path: '/n', message: 'must be >= 5' }])
  expect(schemas.kept).toBe(10)
  // A new version of a queue replaces its validator rather than adding one.
  const edited = { ...queues[5]!, updatedAt: new Date(2_000) } as Queue
  expect(schemas.check(edited, { n: 4 })).toHaveLength(1)
  expect(schemas.kept).toBe(10)
})
