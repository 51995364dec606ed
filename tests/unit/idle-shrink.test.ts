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

describe('idle shrink', () => {
  test('a service that never worked is never shrunk, however quiet', () => {
    expect(shrunkAt([0.01, 0.02, 0, 0.03])).toEqual([])
  })

  test('the first quiet window after work shrinks, once', () => {
    expect(shrunkAt([0.9, 0.5, 0.02, 0.01, 0.02])).toEqual([2])
  })

  test('a light load between work and quiet delays the shrink until it is quiet', () => {
    expect(shrunkAt([0.8, 0.1, 0.12, 0.03, 0.01])).toEqual([3])
  })

  test('a steady light load does not arm it again: no shrink after every window', () => {
    expect(shrunkAt([0.6, 0.02, 0.1, 0.02, 0.1, 0.02])).toEqual([1])
  })

  test('each burst of work is followed by its own shrink', () => {
    expect(shrunkAt([0.5, 0.01, 0.7, 0.3, 0.04, 0.2, 0.0])).toEqual([1, 4, 6])
  })
})
