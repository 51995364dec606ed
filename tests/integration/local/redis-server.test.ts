import { afterEach, describe, expect, test } from 'bun:test'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { Redis } from 'ioredis'
import {
  type PrivateRedis,
  RedisServerMissingError,
  startPrivateRedis,
} from '../../../src/local/redis-server'

const ROOT = resolve(import.meta.dir, '../../..')

let started: PrivateRedis[] = []
let clients: Redis[] = []
let dirs: string[] = []

afterEach(async () => {
  for (const c of clients) c.disconnect()
  for (const r of started) await r.stop()
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
  started = []
  clients = []
  dirs = []
})

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mq-redis-test-'))
  dirs.push(dir)
  return dir
}

async function start(dir: string): Promise<PrivateRedis> {
  const redis = await startPrivateRedis(dir)
  started.push(redis)
  return redis
}

/** A client that fails at once instead of retrying, so a dead server shows as an error. */
function connect(url: string): Redis {
  const client = new Redis(url, { maxRetriesPerRequest: 0, retryStrategy: () => null })
  client.on('error', () => {})
  clients.push(client)
  return client
}

describe('startPrivateRedis', () => {
  test('runs on loopback with the append-only file on and noeviction', async () => {
    const dir = join(tempDir(), 'redis')
    const redis = await start(dir)
    expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`)
    const client = connect(redis.url)
    expect(await client.config('GET', 'appendonly')).toEqual(['appendonly', 'yes'])
    expect(await client.config('GET', 'maxmemory-policy')).toEqual([
      'maxmemory-policy',
      'noeviction',
    ])
    expect(await client.config('GET', 'bind')).toEqual(['bind', '127.0.0.1'])
    expect(await client.config('GET', 'dir')).toEqual(['dir', dir])
    const info = await client.info('server')
    expect(info).toContain(`process_id:${redis.pid}`)
  })

  test('data written before stop is there after a start on the same directory', async () => {
    const dir = join(tempDir(), 'redis')
    const first = await start(dir)
    const before = connect(first.url)
    await before.set('survivor', 'yes')
    await before.xadd('stream', '*', 'm', '1')
    await first.stop()
    await expect(connect(first.url).ping()).rejects.toThrow()

    const second = await start(dir)
    const after = connect(second.url)
    expect(await after.get('survivor')).toBe('yes')
    expect(await after.xlen('stream')).toBe(1)
  })

  test('stop is idempotent', async () => {
    const redis = await start(join(tempDir(), 'redis'))
    await redis.stop()
    await redis.stop()
    await expect(connect(redis.url).ping()).rejects.toThrow()
  })

  test('a server left running on the same directory is replaced, keeping its data', async () => {
    const dir = join(tempDir(), 'redis')
    const leftover = await start(dir)
    await connect(leftover.url).set('from-leftover', '1')
    // Not stopped, as after a SIGKILL of the process that started it.
    const fresh = await start(dir)
    expect(fresh.pid).not.toBe(leftover.pid)
    await expect(connect(leftover.url).ping()).rejects.toThrow()
    expect(await connect(fresh.url).get('from-leftover')).toBe('1')
  })

  test('a stale pid file naming another directory’s redis-server does not stop it', async () => {
    const bystander = await start(join(tempDir(), 'redis'))
    const dir = join(tempDir(), 'redis')
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, 'redis.pid'), `${bystander.pid}\n`)
    const mine = await start(dir)
    expect(await connect(bystander.url).ping()).toBe('PONG')
    expect(await connect(mine.url).ping()).toBe('PONG')
  })

  test('a missing redis-server is a RedisServerMissingError saying how to install it', async () => {
    const emptyPath = tempDir()
    const script = `
      const { startPrivateRedis } = await import(${JSON.stringify(join(ROOT, 'src/local/redis-server.ts'))})
      try {
        await startPrivateRedis(${JSON.stringify(join(emptyPath, 'data'))})
        console.log('started')
      } catch (err) {
        console.log(JSON.stringify({ name: err.name, message: err.message }))
      }
    `
    const proc = Bun.spawnSync([process.execPath, '-e', script], {
      env: { PATH: emptyPath, HOME: emptyPath },
      cwd: ROOT,
    })
    const out = JSON.parse(proc.stdout.toString().trim())
    expect(out).toEqual({
      name: 'RedisServerMissingError',
      message: new RedisServerMissingError().message,
    })
    expect(out.message).toContain('apt-get install')
    expect(out.message).toContain('REDIS_URL')
  })

  test('the service without REDIS_URL and without redis-server exits with that one sentence', async () => {
    const dir = tempDir()
    const proc = Bun.spawn([process.execPath, 'run', join(ROOT, 'src/index.ts'), 'api'], {
      env: { PATH: join(dir, 'no-bin'), HOME: dir, DATA_DIR: join(dir, 'data'), PORT: '0' },
      cwd: ROOT,
      stdout: 'pipe',
      stderr: 'pipe',
    })
    const code = await proc.exited
    const stderr = (await new Response(proc.stderr).text()).trim()
    expect(code).toBe(1)
    expect(stderr).toBe(new RedisServerMissingError().message)
  })
})
