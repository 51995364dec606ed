import { expect, test } from 'bun:test'
import { join } from 'node:path'

const LOGGER = join(import.meta.dir, '../../src/observability/logger.ts')

/** Runs a process that logs `lines` lines on stdout, then ends as `end` says; @returns its lines. */
async function logged(lines: number, end: string): Promise<string[]> {
  const script = `
    const { createLogger } = await import(${JSON.stringify(LOGGER)})
    const log = createLogger('info')
    for (let i = 0; i < ${lines}; i++) log.info({ i, text: 'héllo' }, 'line')
    ${end}
  `
  const child = Bun.spawn(['bun', '-e', script], { stdout: 'pipe', stderr: 'inherit' })
  const out = await new Response(child.stdout).text()
  expect(await child.exited).toBe(0)
  return out.split('\n').filter((l) => l.length > 0)
}

test('stdout gets every line, whole and in order, also when the process exits at once', async () => {
  for (const end of ['', 'process.exit(0)']) {
    const lines = await logged(20_000, end)
    expect(lines).toHaveLength(20_000)
    expect(lines.every((l, i) => JSON.parse(l).i === i && JSON.parse(l).text === 'héllo')).toBe(
      true
    )
  }
})
