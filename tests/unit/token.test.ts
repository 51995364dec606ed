import { afterAll, describe, expect, test } from 'bun:test'
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { decodeProtectedHeader, jwtVerify } from 'jose'
import { mintToken } from '../../src/cli/token'
import { createAuthenticator } from '../../src/http/middleware/auth'

const SECRET = 'a-local-secret-that-is-long-enough-for-hs256'
const ROOT = resolve(import.meta.dir, '../..')
const auth = createAuthenticator({ jwtSecret: SECRET, clockToleranceS: 30 })

async function tenantOf(jwt: string) {
  const caller = await auth.authenticate({ authorization: `Bearer ${jwt}` })
  if (caller.kind !== 'tenant') throw new Error('expected a tenant caller')
  return caller.tenant
}

describe('mintToken', () => {
  test('mints a token the service accepts, for the tenant and scopes asked', async () => {
    const tid = crypto.randomUUID()
    const jwt = await mintToken(
      ['--tenant', tid, '--scope', 'mq:publish mq:read', '--sub', 'alice'],
      SECRET
    )
    const tenant = await tenantOf(jwt)
    expect(tenant.tenantId).toBe(tid)
    expect([...tenant.scopes].sort()).toEqual(['mq:publish', 'mq:read'])
    expect(tenant.principal).toEqual({ kind: 'user', name: 'alice' })
    expect(decodeProtectedHeader(jwt)).toEqual({ alg: 'HS256', typ: 'JWT' })
  })

  test('defaults: mq:admin, a day, sub local-user; the tenant is lower-cased', async () => {
    const tid = crypto.randomUUID()
    const jwt = await mintToken(['--tenant', tid.toUpperCase()], SECRET)
    const { payload } = await jwtVerify(jwt, new TextEncoder().encode(SECRET))
    expect(payload).toMatchObject({ tid, scope: 'mq:admin', sub: 'local-user' })
    expect(payload.exp! - payload.iat!).toBe(86_400)
    expect((await tenantOf(jwt)).scopes.has('mq:admin')).toBe(true)
  })

  test('--ttl sets the lifetime', async () => {
    const jwt = await mintToken(['--tenant', crypto.randomUUID(), '--ttl', '60'], SECRET)
    const { payload } = await jwtVerify(jwt, new TextEncoder().encode(SECRET))
    expect(payload.exp! - payload.iat!).toBe(60)
  })

  test('the -- separator that `bun run token -- …` passes is ignored', async () => {
    const tid = crypto.randomUUID()
    const jwt = await mintToken(['--', '--tenant', tid, '--scope', 'mq:read'], SECRET)
    expect((await tenantOf(jwt)).tenantId).toBe(tid)
  })

  test('a token signed with another secret is not accepted (the secret is really used)', async () => {
    const jwt = await mintToken(['--tenant', crypto.randomUUID()], `${SECRET}-other`)
    await expect(tenantOf(jwt)).rejects.toMatchObject({ code: 'MQ_UNAUTHORIZED' })
  })

  test.each([
    ['no tenant', []],
    ['a tenant that is not a UUID', ['--tenant', 'acme']],
    ['a tenant without a value', ['--tenant']],
    ['an unknown scope', ['--tenant', crypto.randomUUID(), '--scope', 'mq:admin mq:delete']],
    ['a ttl of zero', ['--tenant', crypto.randomUUID(), '--ttl', '0']],
    ['a fractional ttl', ['--tenant', crypto.randomUUID(), '--ttl', '1.5']],
    ['a ttl that is not a number', ['--tenant', crypto.randomUUID(), '--ttl', 'day']],
    ['an unknown option', ['--tenant', crypto.randomUUID(), '--tennant', 'x']],
    ['a stray argument', ['--tenant', crypto.randomUUID(), 'extra']],
  ])('%s is rejected with the usage line', async (_name, args) => {
    const err = await mintToken(args, SECRET).then(
      () => undefined,
      (e: Error) => e
    )
    expect(err).toBeInstanceOf(Error)
    expect(err!.message).toContain('usage: token --tenant <uuid>')
  })

  test('without a secret (JWKS_URL deployments) it says tokens cannot be minted here', async () => {
    await expect(mintToken(['--tenant', crypto.randomUUID()], undefined)).rejects.toThrow(
      /only with JWT_SECRET/
    )
  })
})

describe('token role end to end', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'mq-token-'))
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }))

  /** Runs `cmd` in the repository with only the environment a fresh checkout would have. */
  async function run(cmd: string[]) {
    const proc = Bun.spawn(cmd, {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: dataDir, DATA_DIR: dataDir },
      stdout: 'pipe',
      stderr: 'pipe',
    })
    const [code, stdout, stderr] = await Promise.all([
      proc.exited,
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
    ])
    return { code, stdout: stdout.trim(), stderr: stderr.trim() }
  }

  test('prints only a token that verifies against <DATA_DIR>/secrets/jwt-secret', async () => {
    const tid = crypto.randomUUID()
    const first = await run([process.execPath, 'run', 'src/index.ts', 'token', '--tenant', tid])
    expect(first).toMatchObject({ code: 0 })
    expect(first.stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/)

    const secretFile = join(dataDir, 'secrets', 'jwt-secret')
    expect(statSync(secretFile).mode & 0o777).toBe(0o600)
    const secret = new TextEncoder().encode(readFileSync(secretFile, 'utf8').trim())
    const { payload } = await jwtVerify(first.stdout, secret, { algorithms: ['HS256'] })
    expect(payload).toMatchObject({ tid, scope: 'mq:admin' })

    // The package script, as the README runs it, reuses the same secret.
    const second = await run([
      process.execPath,
      'run',
      'token',
      '--',
      '--tenant',
      tid,
      '--scope',
      'mq:read',
    ])
    expect(second.code).toBe(0)
    const again = await jwtVerify(second.stdout, secret, { algorithms: ['HS256'] })
    expect(again.payload.scope).toBe('mq:read')
  })

  test('wrong arguments exit 1 with the usage line and print no token', async () => {
    const res = await run([process.execPath, 'run', 'src/index.ts', 'token', '--tenant', 'acme'])
    expect(res.code).toBe(1)
    expect(res.stdout).toBe('')
    expect(res.stderr).toContain('usage: token --tenant <uuid>')
  })
})
