import { describe, expect, test } from 'bun:test'
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import { ConfigError, loadConfig } from '../../src/config'

const SECRET = 'a-jwt-secret-that-is-at-least-32-characters-long'
const MASTER_KEY = Buffer.alloc(32, 7).toString('base64')
const PRODUCTION = {
  NODE_ENV: 'production',
  DATABASE_URL: 'postgres://mq@db.internal:5432/mq',
  REDIS_URL: 'redis://redis.internal:6379',
  MQ_MASTER_KEY: MASTER_KEY,
  JWT_SECRET: SECRET,
  METRICS_TOKEN: 'a-metrics-token',
}

/** The problems loadConfig reports for `env`; fails the test if it accepts it. */
function problems(env: Record<string, string | undefined>): string[] {
  try {
    loadConfig(env)
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError)
    expect((err as Error).message).toStartWith('invalid configuration:')
    return (err as ConfigError).problems
  }
  throw new Error(`expected ${JSON.stringify(env)} to be rejected`)
}

const named = (list: string[]) => list.map((p) => p.split(':')[0])

describe('loadConfig', () => {
  test('an empty environment gives the zero-set-up defaults', () => {
    const config = loadConfig({})
    expect(config).toMatchObject({
      NODE_ENV: 'development',
      PORT: 3010,
      HOST: '0.0.0.0',
      DATA_DIR: './.data',
      REDIS_KEY_PREFIX: 'mq',
      REDIS_CLUSTER_NODES: [],
      MAX_MESSAGE_SIZE: 1_048_576,
      MAX_REQUEST_SIZE: 5_242_880,
      MAX_BATCH_SIZE: 1000,
      DEDUP_WINDOW_MS: 86_400_000,
      JWT_CLOCK_TOLERANCE_S: 30,
      TENANT_RATE_LIMIT: 0,
      METRICS_ENABLED: true,
      LEDGER_MODE: 'all',
      IDLE_SHRINK: true,
      // A local run may push to receivers on this machine.
      WEBHOOK_ALLOWED_HOSTS: ['localhost', '127.0.0.1'],
    })
    for (const unset of ['DATABASE_URL', 'REDIS_URL', 'JWT_SECRET', 'JWKS_URL', 'MQ_MASTER_KEY']) {
      expect(config[unset as keyof typeof config]).toBeUndefined()
    }
  })

  test('loopback webhooks are allowed by default only in development', () => {
    expect(loadConfig({ NODE_ENV: 'test' }).WEBHOOK_ALLOWED_HOSTS).toEqual([])
    expect(loadConfig({ WEBHOOK_ALLOWED_HOSTS: 'hooks.internal' }).WEBHOOK_ALLOWED_HOSTS).toEqual([
      'hooks.internal',
    ])
    const production = loadConfig({
      NODE_ENV: 'production',
      DATABASE_URL: 'postgres://u@db/mq',
      REDIS_URL: 'redis://redis:6379',
      MQ_MASTER_KEY: 'a'.repeat(44),
      JWT_SECRET: 's'.repeat(32),
      METRICS_ENABLED: 'false',
    })
    expect(production.WEBHOOK_ALLOWED_HOSTS).toEqual([])
  })

  test('values are coerced to their types', () => {
    const config = loadConfig({
      PORT: '8080',
      METRICS_ENABLED: 'false',
      WEBHOOK_ALLOWED_HOSTS: ' a.example , b.example,,',
      REDIS_CLUSTER_NODES: 'redis://n1:7000,redis://n2:7000',
    })
    expect(config.PORT).toBe(8080)
    expect(config.METRICS_ENABLED).toBe(false)
    expect(config.WEBHOOK_ALLOWED_HOSTS).toEqual(['a.example', 'b.example'])
    expect(config.REDIS_CLUSTER_NODES).toEqual(['redis://n1:7000', 'redis://n2:7000'])
  })

  test('every wrong value is reported at once', () => {
    const found = problems({ PORT: 'abc', REDIS_URL: 'http://x', JWT_SECRET: 'too-short' })
    expect(found).toHaveLength(3)
    expect(named(found).sort()).toEqual(['JWT_SECRET', 'PORT', 'REDIS_URL'])
    expect(found.find((p) => p.startsWith('JWT_SECRET'))).toContain('at least 32')
  })

  test('cross-variable problems are listed beside wrong values, not after fixing them', () => {
    const found = problems({ NODE_ENV: 'production', PORT: '99999' })
    expect(named(found).sort()).toEqual([
      'DATABASE_URL',
      'JWT_SECRET',
      'METRICS_TOKEN',
      'MQ_MASTER_KEY',
      'PORT',
      'REDIS_URL',
    ])
    const both = problems({ JWT_SECRET: SECRET, JWKS_URL: 'https://auth/jwks', LOG_LEVEL: 'loud' })
    expect(named(both).sort()).toEqual(['JWKS_URL', 'LOG_LEVEL'])
  })

  test.each([
    ['PORT', '3.5'],
    ['PORT', '-1'],
    ['PORT', '65536'],
    ['NODE_ENV', 'prod'],
    ['LOG_LEVEL', 'verbose'],
    ['DATABASE_URL', 'mysql://db/mq'],
    ['DATABASE_URL', 'not a url'],
    ['REDIS_URL', 'localhost:6379'],
    ['REDIS_KEY_PREFIX', 'has space'],
    ['REDIS_KEY_PREFIX', 'a:b'],
    ['REDIS_KEY_PREFIX', 'x'.repeat(33)],
    ['JWKS_URL', 'jwks'],
    ['JWT_CLOCK_TOLERANCE_S', '120'],
    ['MQ_MASTER_KEY', 'short'],
    ['INTERNAL_SERVICE_TOKEN', 'short'],
    ['METRICS_ENABLED', 'maybe'],
    ['LEDGER_MODE', 'some'],
    ['IDLE_SHRINK', 'sometimes'],
    ['MAX_REQUEST_SIZE', '0'],
  ])('%s=%j is rejected, naming the variable', (name, value) => {
    expect(named(problems({ [name]: value }))).toEqual([name])
  })

  test('production requires DATABASE_URL, REDIS_URL, MQ_MASTER_KEY, a JWT key and METRICS_TOKEN', () => {
    expect(loadConfig(PRODUCTION).NODE_ENV).toBe('production')
    expect(named(problems({ NODE_ENV: 'production' })).sort()).toEqual([
      'DATABASE_URL',
      'JWT_SECRET',
      'METRICS_TOKEN',
      'MQ_MASTER_KEY',
      'REDIS_URL',
    ])
    for (const name of [
      'DATABASE_URL',
      'REDIS_URL',
      'MQ_MASTER_KEY',
      'JWT_SECRET',
      'METRICS_TOKEN',
    ]) {
      const found = problems({ ...PRODUCTION, [name]: undefined })
      expect(named(found)).toEqual([name])
    }
  })

  test('regression: production does not start with GET /metrics open; METRICS_ENABLED=false lets it', () => {
    expect(problems({ ...PRODUCTION, METRICS_TOKEN: undefined })).toEqual([
      'METRICS_TOKEN: required in production unless METRICS_ENABLED=false',
    ])
    expect(problems({ ...PRODUCTION, METRICS_TOKEN: '', METRICS_ENABLED: 'true' })).toHaveLength(1)
    const off = loadConfig({ ...PRODUCTION, METRICS_TOKEN: undefined, METRICS_ENABLED: 'false' })
    expect(off.METRICS_ENABLED).toBe(false)
    expect(off.METRICS_TOKEN).toBeUndefined()
    // Outside production an open endpoint is still the local default.
    expect(loadConfig({ NODE_ENV: 'test' }).METRICS_TOKEN).toBeUndefined()
  })

  test('production accepts JWKS_URL instead of JWT_SECRET, and cluster nodes instead of REDIS_URL', () => {
    const config = loadConfig({
      ...PRODUCTION,
      JWT_SECRET: undefined,
      JWKS_URL: 'https://auth.internal/.well-known/jwks.json',
      REDIS_URL: undefined,
      REDIS_CLUSTER_NODES: 'redis://n1:7000',
    })
    expect(config.JWKS_URL).toBe('https://auth.internal/.well-known/jwks.json')
  })

  test('JWT_SECRET and JWKS_URL together are rejected', () => {
    const found = problems({ JWT_SECRET: SECRET, JWKS_URL: 'https://auth/jwks' })
    expect(found).toEqual(['JWKS_URL: set JWT_SECRET or JWKS_URL, not both'])
  })

  test('a trailing colon on REDIS_KEY_PREFIX is stripped', () => {
    expect(loadConfig({ REDIS_KEY_PREFIX: 'tenant-mq:' }).REDIS_KEY_PREFIX).toBe('tenant-mq')
    expect(loadConfig({ REDIS_KEY_PREFIX: 'mq.v2' }).REDIS_KEY_PREFIX).toBe('mq.v2')
  })

  test('MQ_MASTER_KEYS_PREVIOUS is a comma-separated list of keys, each checked like MQ_MASTER_KEY', () => {
    const older = Buffer.alloc(32, 8).toString('base64')
    expect(loadConfig({}).MQ_MASTER_KEYS_PREVIOUS).toEqual([])
    const config = loadConfig({ MQ_MASTER_KEYS_PREVIOUS: ` ${MASTER_KEY}, ${older} ` })
    expect(config.MQ_MASTER_KEYS_PREVIOUS).toEqual([MASTER_KEY, older])
    expect(problems({ MQ_MASTER_KEYS_PREVIOUS: `${MASTER_KEY},short` })).toEqual([
      'MQ_MASTER_KEYS_PREVIOUS.1: base64 of at least 32 random bytes',
    ])
  })

  test('empty strings count as unset', () => {
    const config = loadConfig({
      PORT: '',
      DATABASE_URL: '',
      REDIS_URL: '',
      JWT_SECRET: '',
      JWKS_URL: '',
      REDIS_KEY_PREFIX: '',
    })
    expect(config.PORT).toBe(3010)
    expect(config.DATABASE_URL).toBeUndefined()
    expect(config.REDIS_URL).toBeUndefined()
    expect(config.REDIS_KEY_PREFIX).toBe('mq')
    // In production an empty value is as missing as an absent one.
    expect(named(problems({ ...PRODUCTION, DATABASE_URL: '' }))).toEqual(['DATABASE_URL'])
  })

  test('variables the service does not know are ignored', () => {
    expect(loadConfig({ PATH: '/usr/bin', HOME: '/root', npm_config_x: '1' }).PORT).toBe(3010)
  })
})

describe('source rules', () => {
  const SRC = resolve(import.meta.dir, '../../src')
  const files = (readdirSync(SRC, { recursive: true }) as string[])
    .filter((f) => /\.(ts|js|mjs|cjs|lua)$/.test(f))
    .map((f) => join(SRC, f))

  test('the source tree is where the test thinks it is', () => {
    expect(files).toContain(join(SRC, 'config.ts'))
    expect(files.length).toBeGreaterThan(10)
  })

  test('only src/config.ts and src/index.ts read the environment', () => {
    const readers = files
      .filter((f) => /process\.env|Bun\.env|import\.meta\.env/.test(readFileSync(f, 'utf8')))
      .map((f) => relative(SRC, f))
      .filter((f) => f !== 'config.ts' && f !== 'index.ts')
    expect(readers).toEqual([])
  })

  test('nothing uses the deprecated createCipher (no IV, MD5 key derivation)', () => {
    const users = files
      .filter((f) => /\bcreate(De)?cipher\(/.test(readFileSync(f, 'utf8')))
      .map((f) => relative(SRC, f))
    expect(users).toEqual([])
  })
})
