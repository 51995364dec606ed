import { describe, expect, test } from 'bun:test'
import { missedDeadline, Pause } from '../../src/worker/loop'

describe('worker loop helpers', () => {
  test('missedDeadline: false when the work settles first, true when the deadline comes first', async () => {
    expect(await missedDeadline(Bun.sleep(5), 1000)).toBe(false)
    const started = Date.now()
    expect(await missedDeadline(Bun.sleep(1000), 20)).toBe(true)
    expect(Date.now() - started).toBeLessThan(500)
  })

  test('missedDeadline passes on the work’s rejection', async () => {
    await expect(missedDeadline(Promise.reject(new Error('boom')), 1000)).rejects.toThrow('boom')
  })

  test('a Pause runs its full length, or ends at once when ended', async () => {
    const pause = new Pause()
    let started = Date.now()
    await pause.for(30)
    expect(Date.now() - started).toBeGreaterThanOrEqual(25)
    started = Date.now()
    const waiting = pause.for(10_000)
    pause.end()
    await waiting
    expect(Date.now() - started).toBeLessThan(500)
  })

  test('ending a Pause that is not waiting is harmless', async () => {
    const pause = new Pause()
    pause.end()
    const started = Date.now()
    await pause.for(20)
    expect(Date.now() - started).toBeGreaterThanOrEqual(15)
  })
})
