import { describe, expect, test } from 'bun:test'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import pkg from '../../package.json'
import { ROLES } from '../../src/cli/usage'

const ROOT = resolve(import.meta.dir, '../..')

/**
 * Runs `mq <args>` as a user would, from an empty folder and with a broken environment, so an
 * answer that needed the configuration (or a store) would show up as a failure.
 */
async function mq(...args: string[]) {
  const dir = mkdtempSync(join(tmpdir(), 'mq-usage-'))
  const proc = Bun.spawn([process.execPath, 'run', join(ROOT, 'src/index.ts'), ...args], {
    env: { PATH: process.env.PATH, HOME: dir, PORT: 'not-a-port', DATA_DIR: join(dir, 'data') },
    cwd: dir,
    stdout: 'pipe',
    stderr: 'pipe',
  })
  const [code, stdout, stderr] = await Promise.all([
    proc.exited,
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
  ])
  return { code, stdout, stderr }
}

function expectUsage(text: string) {
  for (const role of ROLES) expect(text).toMatch(new RegExp(`^  ${role} `, 'm'))
  for (const name of ['DATABASE_URL', 'REDIS_URL', 'PORT', 'DATA_DIR', 'JWT_SECRET'])
    expect(text).toContain(name)
  expect(text).toContain('README.md')
  expect(text).not.toContain('invalid configuration')
}

describe('mq usage', () => {
  test.each(['--help', '-h'])('%s prints the usage on stdout and exits 0', async (flag) => {
    const { code, stdout, stderr } = await mq(flag)
    expect(stderr).toBe('')
    expect(code).toBe(0)
    expectUsage(stdout)
  })

  test('an unknown role names it and prints the usage on stderr, exit 2', async () => {
    const { code, stdout, stderr } = await mq('serve')
    expect(stdout).toBe('')
    expect(code).toBe(2)
    expect(stderr).toStartWith("unknown role or option 'serve'")
    expectUsage(stderr)
  })

  test('--version prints the package version and nothing else', async () => {
    const { code, stdout } = await mq('--version')
    expect(code).toBe(0)
    expect(stdout).toBe(`${pkg.version}\n`)
  })

  test('a known role still reads the configuration', async () => {
    const { code, stderr } = await mq('api')
    expect(code).toBe(1)
    expect(stderr).toContain('invalid configuration')
    expect(stderr).toContain('PORT')
  })
})
