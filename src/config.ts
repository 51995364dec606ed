import { z } from 'zod'

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes')

const optionalUrl = z.url().optional()

/** Comma-separated list of non-empty strings; empty string means an empty list. */
const list = z
  .string()
  .transform((v) =>
    v
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
  )
  .default([])

const int = (min: number) => z.coerce.number().int().min(min)

const masterKey = z.string().regex(/^[A-Za-z0-9+/=_-]{43,}$/, 'base64 of at least 32 random bytes')

/**
 * The whole environment of the service. Names follow the seed and ARCHITECTURE.md; every
 * default is what a local `bun start` with no environment should do.
 */
export const configSchema = z
  .object({
    NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
    PORT: int(0).max(65535).default(3010),
    HOST: z.string().min(1).default('0.0.0.0'),
    LOG_LEVEL: z
      .enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'])
      .default('info'),
    /** Where the zero-set-up run keeps PGlite, the private redis-server and local secrets. */
    DATA_DIR: z.string().min(1).default('./.data'),
    DATABASE_URL: z
      .url({ abort: true })
      .refine((u) => /^postgres(ql)?:\/\//.test(u), 'must be a postgres:// or postgresql:// URL')
      .optional(),
    DATABASE_POOL_SIZE: int(1).max(100).default(10),
    /** Folder of drizzle-kit migrations; by default `drizzle/` beside the sources or the binary. */
    MIGRATIONS_DIR: z.string().min(1).optional(),
    REDIS_URL: z
      .url({ abort: true })
      .refine((u) => /^rediss?:\/\//.test(u), 'must be a redis:// or rediss:// URL')
      .optional(),
    REDIS_CLUSTER_NODES: list,
    REDIS_KEY_PREFIX: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,32}:?$/, 'letters, digits, ".", "_" or "-", at most 32')
      .default('mq')
      .transform((p) => p.replace(/:$/, '')),
    INTERNAL_SERVICE_TOKEN: z.string().min(16, 'at least 16 characters').optional(),
    JWT_SECRET: z.string().min(32, 'at least 32 characters for HS256').optional(),
    JWKS_URL: optionalUrl,
    JWT_ISSUER: z.string().min(1).optional(),
    JWT_AUDIENCE: z.string().min(1).optional(),
    JWT_CLOCK_TOLERANCE_S: int(0).max(60).default(30),
    MQ_MASTER_KEY: masterKey.optional(),
    /**
     * Master keys used before MQ_MASTER_KEY, comma-separated: they no longer encrypt but still
     * decrypt what they sealed, so a key can be rotated without re-encrypting stored messages.
     */
    MQ_MASTER_KEYS_PREVIOUS: list.pipe(z.array(masterKey)),
    MAX_MESSAGE_SIZE: int(1).default(1_048_576),
    MAX_REQUEST_SIZE: int(1).default(5_242_880),
    MAX_BATCH_SIZE: int(1).max(10_000).default(1000),
    /** Default retention of a new queue, in seconds (the seed's unit). */
    DEFAULT_TTL: int(1).default(604_800),
    MAX_QUEUE_LENGTH: int(1).default(10_000),
    CONSUMER_TIMEOUT: int(1000).default(30_000),
    /**
     * Webhook requests in flight per subscription in each worker (the seed's name). One
     * subscription keeps up with 2,000 messages/s from 50 on; a hanging endpoint holds at most
     * this many of the process's 1,000 slots.
     */
    MAX_CONCURRENT_CONSUMERS: int(1).max(1000).default(50),
    PROCESSING_TIMEOUT_MS: int(100).default(15_000),
    DEDUP_WINDOW_MS: int(1000).default(86_400_000),
    TENANT_RATE_LIMIT: int(0).default(0),
    TENANT_MAX_QUEUES: int(1).default(1000),
    METADATA_CACHE_TTL_MS: int(0).default(30_000),
    METRICS_ENABLED: bool.default(true),
    METRICS_TOKEN: z.string().min(1).optional(),
    HEALTH_CHECK_INTERVAL: int(1).default(30),
    LEDGER_MODE: z.enum(['all', 'failures', 'off']).default('all'),
    /** Give compiled code and free memory back when the process goes quiet (src/idle-shrink.ts). */
    IDLE_SHRINK: bool.default(true),
    /**
     * A debugging aid, off unless set: on SIGUSR2 the process writes its heap's object counts by
     * type (and with MQ_HEAP_SNAPSHOT_FULL, a full heap snapshot) into this folder.
     */
    MQ_HEAP_SNAPSHOT_DIR: z.string().min(1).optional(),
    MQ_HEAP_SNAPSHOT_FULL: bool.default(false),
    WEBHOOK_ALLOWED_HOSTS: list,
    AUTH_SERVICE_URL: optionalUrl,
    USER_SERVICE_URL: optionalUrl,
    AUDIT_SERVICE_URL: optionalUrl,
    NOTIFICATION_SERVICE_URL: optionalUrl,
  })
  .superRefine(
    (c, ctx) => {
      if (c.JWT_SECRET && c.JWKS_URL) {
        ctx.addIssue({
          code: 'custom',
          path: ['JWKS_URL'],
          message: 'set JWT_SECRET or JWKS_URL, not both',
        })
      }
      if (c.NODE_ENV === 'production') {
        for (const name of ['DATABASE_URL', 'REDIS_URL', 'MQ_MASTER_KEY'] as const) {
          if (!c[name] && !(name === 'REDIS_URL' && c.REDIS_CLUSTER_NODES.length > 0)) {
            ctx.addIssue({ code: 'custom', path: [name], message: 'required in production' })
          }
        }
        if (!c.JWT_SECRET && !c.JWKS_URL) {
          ctx.addIssue({
            code: 'custom',
            path: ['JWT_SECRET'],
            message: 'JWT_SECRET or JWKS_URL is required in production',
          })
        }
        // The series name every tenant and queue with their depths, and HOST is 0.0.0.0.
        if (!c.METRICS_TOKEN && c.METRICS_ENABLED !== false) {
          ctx.addIssue({
            code: 'custom',
            path: ['METRICS_TOKEN'],
            message: 'required in production unless METRICS_ENABLED=false',
          })
        }
      }
    },
    // These checks look only at which variables are present, so they also run when another
    // value is wrong (zod skips refinements then by default) and every problem is listed at once.
    { when: (payload) => typeof payload.value === 'object' && payload.value !== null }
  )

export type Config = z.infer<typeof configSchema>

/** A configuration that could not be parsed; `problems` holds one readable line per issue. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`)
    this.name = 'ConfigError'
  }
}

/**
 * Parses the environment once. Empty strings count as unset, as they do in compose files.
 * @throws ConfigError listing every problem, not just the first.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const known = Object.keys(configSchema.shape)
  const input = Object.fromEntries(
    known.filter((k) => env[k] !== undefined && env[k] !== '').map((k) => [k, env[k]])
  )
  const result = configSchema.safeParse(input)
  if (result.success) {
    // A local run pushes webhooks to receivers on this machine, which the SSRF guard refuses
    // otherwise; production and tests name their exceptions themselves.
    if (result.data.NODE_ENV === 'development' && input.WEBHOOK_ALLOWED_HOSTS === undefined) {
      return { ...result.data, WEBHOOK_ALLOWED_HOSTS: ['localhost', '127.0.0.1'] }
    }
    return result.data
  }
  throw new ConfigError(
    result.error.issues.map((i) => `${i.path.join('.') || '(environment)'}: ${i.message}`)
  )
}
