import { describe, expect, test } from 'bun:test'
import { declaredKeys, SCRIPTS } from '../../src/streams/scripts'
import {
  decodePromote,
  decodePublish,
  decodePull,
  decodeTakeToken,
} from '../../src/streams/scripts/replies'

/** The highest KEYS[i] a script's code (its header left out) reads. */
function highestKeyUsed(lua: string): number {
  const code = lua.slice(lua.indexOf(']]') + 2)
  return Math.max(0, ...[...code.matchAll(/KEYS\[(\d+)\]/g)].map((m) => Number(m[1])))
}

describe('script key declarations', () => {
  test('each fixed-key script declares, in its header, every key its code reads', () => {
    for (const [name, script] of Object.entries(SCRIPTS)) {
      const declared = 'numberOfKeys' in script ? script.numberOfKeys : undefined
      if (declared === undefined) continue
      expect({ name, keys: highestKeyUsed(script.lua) }).toEqual({ name, keys: declared })
    }
  })

  test('a run of keys in the header makes the key count an argument', () => {
    expect(declaredKeys('--[[\n  KEYS[1] a\n  KEYS[2..] b\n]]')).toBeUndefined()
    expect(declaredKeys('--[[\n  KEYS[1..n] a\n]]')).toBeUndefined()
    expect(declaredKeys('--[[\n  KEYS[1] a\n  KEYS[2] b\n]]\nreturn KEYS[3]')).toBe(2)
    expect(SCRIPTS.publishMessages).not.toHaveProperty('numberOfKeys')
    expect(SCRIPTS.claimDedupRoutes).not.toHaveProperty('numberOfKeys')
  })
})

describe('reply decoders', () => {
  test('publish: four values per message, status numbers to outcomes', () => {
    const reply = [1, '5-0', 100, 0, 2, '', 101, 1, -1, '', 0, 0]
    expect(decodePublish(reply, 3)).toEqual([
      { status: 'published', streamId: '5-0', publishedAt: 100, duplicate: false },
      { status: 'scheduled', streamId: null, publishedAt: 101, duplicate: true },
      { status: 'full', streamId: null, publishedAt: 0, duplicate: false },
    ])
  })

  test('pull: named fields, no deadline as null, dead deliveries keep their held count', () => {
    const fields = ['i', 'm1', 'p', '{}', 't', '7']
    const pulled = decodePull([[['1-0', 1, fields]], [['2-0', 3, fields, 4]], 1, 2, -1, 5], 3)
    expect(pulled).toMatchObject({ gone: 1, expired: 2, nextDeadline: null, passed: 5 })
    expect(pulled.delivered[0]).toMatchObject({ partition: 3, streamId: '1-0', deliveryCount: 1 })
    expect(pulled.delivered[0]).not.toHaveProperty('heldAs')
    expect(pulled.dead[0]).toMatchObject({ streamId: '2-0', deliveryCount: 3, heldAs: 4 })
    expect(decodePull([[], [], 0, 0, 1234, 0], 0).nextDeadline).toBe(1234)
  })

  test('promote and take-token replies', () => {
    expect(decodePromote([2, -1, 10, 11])).toEqual({ promoted: 2, nextDue: -1, dueTimes: [10, 11] })
    expect(decodeTakeToken([1, 4, 0, 200])).toEqual({
      allowed: true,
      remaining: 4,
      retryAfterMs: 0,
      resetMs: 200,
    })
    expect(decodeTakeToken([0, 0, 50, 1000]).allowed).toBe(false)
  })
})
