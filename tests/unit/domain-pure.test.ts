import { describe, expect, test } from 'bun:test'
import fc from 'fast-check'
import { matchesFilter } from '../../src/domain/filter'
import { choosePartition } from '../../src/domain/publish'
import { MAX_RETRY_DELAY_MS, retryDelay } from '../../src/domain/retry'
import { nextOccurrence } from '../../src/domain/schedules'
import { queueOf } from '../helpers/stores'

describe('matchesFilter', () => {
  const subject = {
    headers: { type: 'order', region: 'eu-west' },
    key: 'k1',
    payload: { amount: 30, status: 'paid', note: null },
  }

  test('no filter, or an empty one, matches everything', () => {
    expect(matchesFilter(null, subject)).toBe(true)
    expect(matchesFilter({}, subject)).toBe(true)
  })

  test('a plain value is equality; every condition must hold', () => {
    expect(matchesFilter({ headers: { type: 'order' } }, subject)).toBe(true)
    expect(matchesFilter({ headers: { type: 'refund' } }, subject)).toBe(false)
    expect(matchesFilter({ headers: { type: 'order' }, key: 'k2' }, subject)).toBe(false)
    expect(matchesFilter({ payload: { note: null } }, subject)).toBe(true)
  })

  test('operators: eq, in, exists, prefix, gt, lt', () => {
    const p = (condition: object) => matchesFilter({ payload: { amount: condition } }, subject)
    expect(p({ eq: 30 })).toBe(true)
    expect(p({ in: [10, 30] })).toBe(true)
    expect(p({ in: [10] })).toBe(false)
    expect(p({ gt: 29, lt: 31 })).toBe(true)
    expect(p({ gt: 30 })).toBe(false)
    // A number never compares with a string.
    expect(p({ gt: '1' })).toBe(false)
    expect(matchesFilter({ headers: { region: { prefix: 'eu-' } } }, subject)).toBe(true)
    expect(matchesFilter({ headers: { missing: { exists: false } } }, subject)).toBe(true)
    expect(matchesFilter({ headers: { type: { exists: false } } }, subject)).toBe(false)
  })

  test('a payload that is not an object has no fields', () => {
    expect(matchesFilter({ payload: { a: { exists: false } } }, { ...subject, payload: [1] })).toBe(
      true
    )
    expect(matchesFilter({ payload: { a: 1 } }, { ...subject, payload: 'text' })).toBe(false)
  })
})

describe('choosePartition', () => {
  test('a key always takes the same partition, within range', () => {
    fc.assert(
      fc.property(fc.string(), fc.integer({ min: 1, max: 64 }), (key, count) => {
        const queue = queueOf(count)
        const p = choosePartition(queue, key, null)
        expect(p).toBeGreaterThanOrEqual(0)
        expect(p).toBeLessThan(count)
        expect(choosePartition(queue, key, 'other-id')).toBe(p)
      }),
      { numRuns: 200 }
    )
  })

  test('without a key a client id routes; with neither, round-robin over every partition', () => {
    const queue = queueOf(4)
    expect(choosePartition(queue, undefined, 'id')).toBe(choosePartition(queue, 'id', null))
    const taken = Array.from({ length: 8 }, () => choosePartition(queue, undefined, null))
    expect(new Set(taken)).toEqual(new Set([0, 1, 2, 3]))
    expect(choosePartition(queueOf(1), 'k', null)).toBe(0)
  })
})

describe('retryDelay', () => {
  test('fixed is flat; exponential doubles per attempt within ±20 %, capped', () => {
    const fixed = { retryDelayMs: 500, retryBackoff: 'fixed' as const }
    expect(retryDelay(fixed, 7)).toBe(500)
    const exp = { retryDelayMs: 1000, retryBackoff: 'exponential' as const }
    expect(retryDelay(exp, 1, () => 0.5)).toBe(1000)
    expect(retryDelay(exp, 3, () => 0.5)).toBe(4000)
    expect(retryDelay(exp, 3, () => 0)).toBe(3200)
    expect(retryDelay(exp, 3, () => 1)).toBe(4800)
    expect(retryDelay(exp, 0, () => 0.5)).toBe(1000)
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 1, max: 100 }),
        (ms, n) => {
          const d = retryDelay({ retryDelayMs: ms, retryBackoff: 'exponential' }, n)
          expect(d).toBeLessThanOrEqual(Math.round(MAX_RETRY_DELAY_MS * 1.2))
          expect(d).toBeGreaterThanOrEqual(Math.floor(Math.min(ms, MAX_RETRY_DELAY_MS) * 0.8))
        }
      ),
      { numRuns: 200 }
    )
  })
})

describe('nextOccurrence', () => {
  const every5 = {
    cron: '*/5 * * * *',
    timezone: 'UTC',
    startAt: null,
    endAt: null,
    maxRuns: null,
    runs: 0,
  }

  test('the next time the cron names, in its zone', () => {
    expect(nextOccurrence(every5, new Date('2026-01-01T10:02:00Z'))).toEqual(
      new Date('2026-01-01T10:05:00Z')
    )
    const daily = { ...every5, cron: '0 9 * * *', timezone: 'Europe/Paris' }
    expect(nextOccurrence(daily, new Date('2026-01-01T10:00:00Z'))).toEqual(
      new Date('2026-01-02T08:00:00Z')
    )
  })

  test('none after maxRuns, none past endAt, none before startAt', () => {
    const at = new Date('2026-01-01T10:02:00Z')
    expect(nextOccurrence({ ...every5, maxRuns: 3, runs: 3 }, at)).toBeNull()
    expect(nextOccurrence({ ...every5, maxRuns: 3, runs: 2 }, at)).not.toBeNull()
    expect(nextOccurrence({ ...every5, endAt: new Date('2026-01-01T10:04:00Z') }, at)).toBeNull()
    expect(nextOccurrence({ ...every5, startAt: new Date('2026-01-01T11:01:00Z') }, at)).toEqual(
      new Date('2026-01-01T11:05:00Z')
    )
  })
})
