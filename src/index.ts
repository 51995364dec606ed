import { join } from 'node:path'
import { createApp } from './app'
import { mintToken } from './cli/token'
import { parseCommand, startLine, USAGE, VERSION } from './cli/usage'
import { type Config, ConfigError, loadConfig } from './config'
import { openDatabase, resolveMigrations } from './db/client'
import { buildDeps, resolveJwtSecret } from './deps'
import { bunServeLimits } from './http/server'
import { startIdleShrink } from './idle-shrink'
import { RedisServerMissingError } from './local/redis-server'
import { installHeapDumps } from './observability/heap-dump'
import { createLogger } from './observability/logger'
import { startWorker } from './wiring/worker'

/** How long shutdown may take before the process exits anyway. */
const SHUTDOWN_DEADLINE_MS = 10_000

async function migrate(config: Config): Promise<void> {
  const database = await openDatabase({
    url: config.DATABASE_URL,
    pgliteDir: join(config.DATA_DIR, 'pg'),
    poolSize: 1,
  })
  try {
    await database.migrate(resolveMigrations(config.MIGRATIONS_DIR))
  } finally {
    await database.close()
  }
}

async function serve(config: Config, role: 'api' | 'worker' | 'all'): Promise<void> {
  const logger = createLogger(config.LOG_LEVEL)
  const stopping = new AbortController()
  const deps = await buildDeps(config, logger, { stopping: stopping.signal })
  const server =
    role === 'worker'
      ? undefined
      : Bun.serve({
          port: config.PORT,
          hostname: config.HOST,
          fetch: createApp(deps).fetch,
          ...bunServeLimits(),
        })
  const worker = role === 'api' ? undefined : startWorker(deps)
  const stopIdleShrink = config.IDLE_SHRINK ? startIdleShrink(logger) : () => {}
  if (config.MQ_HEAP_SNAPSHOT_DIR) {
    installHeapDumps(config.MQ_HEAP_SNAPSHOT_DIR, config.MQ_HEAP_SNAPSHOT_FULL, logger)
  }
  logger.info({ role, port: server?.port }, 'message queue service started')
  if (server && config.NODE_ENV === 'development') {
    console.log(
      startLine(config.HOST, server.port ?? config.PORT, import.meta.path.endsWith('.ts'))
    )
  }

  const shutdown = async (signal: string) => {
    if (stopping.signal.aborted) return
    logger.info({ signal }, 'shutting down')
    const deadline = setTimeout(() => {
      logger.error('shutdown deadline passed, exiting')
      process.exit(1)
    }, SHUTDOWN_DEADLINE_MS)
    // Long polls answer after their current wait rather than at the end of the whole one (up
    // to 20 s), and the HTTP server and the worker loops finish side by side, within the deadline.
    stopping.abort()
    stopIdleShrink()
    await Promise.all([server?.stop(), worker?.stop()])
    await deps.close()
    clearTimeout(deadline)
    process.exit(0)
  }
  process.on('SIGTERM', () => void shutdown('SIGTERM'))
  process.on('SIGINT', () => void shutdown('SIGINT'))
}

async function main(argv: string[]): Promise<void> {
  const command = parseCommand(argv)
  if (command.kind === 'init-pglite') {
    const { initialisePglite } = await import('./db/pglite')
    await initialisePglite(command.dir)
    return
  }
  if (command.kind === 'help') {
    console.log(USAGE)
    return
  }
  if (command.kind === 'version') {
    console.log(VERSION)
    return
  }
  if (command.kind === 'unknown') {
    // Before the configuration: a typo should not be answered with an environment's problems.
    console.error(`unknown role or option '${command.arg}'\n\n${USAGE}`)
    process.exit(2)
  }
  const { role, args: rest } = command
  const config = loadConfig()
  if (role === 'token') {
    try {
      console.log(await mintToken(rest, resolveJwtSecret(config)))
    } catch (err) {
      // A usage mistake, not a failed start: say only what was wrong.
      console.error((err as Error).message)
      process.exit(1)
    }
  } else if (role === 'migrate') {
    await migrate(config)
    console.log('migrations applied')
  } else {
    await serve(config, role)
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof RedisServerMissingError) {
    console.error(err.message)
  } else {
    console.error(err instanceof Error ? `start-up failed: ${err.message}` : err)
  }
  process.exit(1)
})
