import { afterEach, describe, expect, test } from 'bun:test'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { localSecret } from '../../src/local/secrets'

const MODULE = resolve(import.meta.dir, '../../src/local/secrets.ts')
let dirs: string[] = []

afterEach(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
  dirs = []
})

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mq-secrets-'))
  dirs.push(dir)
  return dir
}

describe('localSecret', () => {
  test('is made once, 32 random bytes, readable only by the owner, then reused', () => {
    const dir = tempDir()
    const secret = localSecret(dir, 'jwt-secret')
    expect(Buffer.from(secret, 'base64url')).toHaveLength(32)
    expect(statSync(join(dir, 'secrets', 'jwt-secret')).mode & 0o777).toBe(0o600)
    expect(statSync(join(dir, 'secrets')).mode & 0o777).toBe(0o700)
    expect(localSecret(dir, 'jwt-secret')).toBe(secret)
    expect(localSecret(dir, 'other')).not.toBe(secret)
    // No temporary files are left beside the secrets.
    expect(readdirSync(join(dir, 'secrets')).sort()).toEqual(['jwt-secret', 'other'])
  })

  test('an empty secret file is an error, not an empty key', () => {
    const dir = tempDir()
    mkdirSync(join(dir, 'secrets'))
    writeFileSync(join(dir, 'secrets', 'jwt-secret'), '\n')
    expect(() => localSecret(dir, 'jwt-secret')).toThrow(/is empty/)
  })

  test('processes starting together on a fresh data dir all get the same secret', async () => {
    const dir = tempDir()
    // Every child spins until the same instant, so they race for the first write.
    const at = Date.now() + 1500
    const script = `
      const { localSecret } = await import(${JSON.stringify(MODULE)})
      while (Date.now() < ${at}) {}
      try {
        console.log(JSON.stringify({ secret: localSecret(${JSON.stringify(dir)}, 'jwt-secret') }))
      } catch (err) {
        console.log(JSON.stringify({ error: err.code ?? err.message }))
      }
    `
    const children = Array.from({ length: 8 }, () =>
      Bun.spawn([process.execPath, '-e', script], { stdout: 'pipe', stderr: 'inherit' })
    )
    const answers = await Promise.all(
      children.map(async (child) => JSON.parse((await new Response(child.stdout).text()).trim()))
    )
    const secrets = new Set(answers.map((a) => a.secret))
    expect(answers.filter((a) => a.error)).toEqual([])
    expect(secrets.size).toBe(1)
    expect(localSecret(dir, 'jwt-secret')).toBe([...secrets][0])
  })
})
