/**
 * Preloaded by `bun run test:chaos` (besides tests/setup.ts): after the last chaos test it
 * prints the figures of every case as one table, and makes sure nothing a test started
 * outlives the run.
 */
import { afterAll } from 'bun:test'
import { printTable } from './oracle'
import { reaper } from './processes'

afterAll(async () => {
  await reaper.cleanup()
  printTable()
})
