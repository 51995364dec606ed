import { describe, expect, test } from 'bun:test'
import { IdleShrinker } from '../../src/idle-shrink'

/** Feeds windows' CPU shares (of one core) and returns which windows shrank. */
function shrunkAt(shares: number[]): number[] {
  let shrinks = 0
  const shrinker = new IdleShrinker(() => shrinks++)
  const at = shares.flatMap((share, i) => (shrinker.observe(share) ? [i] : []))
  expect(shrinks).toBe(at.length)
  return at
}

/** `n` quiet windows. */
const quiet = (n: number) => Array.from({ length: n }, (_, i) => (i % 2) * 0.02)

describe('idle shrink', () => {
  test('a service that never worked is never shrunk, however long it is quiet', () => {
    expect(shrunkAt(quiet(20))).toEqual([])
  })

  test('after work, the sixth quiet window in a row shrinks, once', () => {
    expect(shrunkAt([0.9, 0.5, ...quiet(12)])).toEqual([7])
  })

  test('a lull shorter than six windows keeps the code', () => {
    expect(shrunkAt([0.9, ...quiet(5), 0.6, ...quiet(5), 0.3])).toEqual([])
  })

  test('a window of light load starts the quiet count again', () => {
    expect(shrunkAt([0.8, ...quiet(3), 0.1, ...quiet(6)])).toEqual([10])
  })

  test('a steady light load does not arm it again: no shrink after every lull', () => {
    expect(shrunkAt([0.6, ...quiet(6), 0.1, ...quiet(6), 0.1, ...quiet(6)])).toEqual([6])
  })

  test('each burst of work is followed by its own shrink', () => {
    expect(shrunkAt([0.5, ...quiet(6), 0.7, 0.3, ...quiet(6)])).toEqual([6, 14])
  })
})
