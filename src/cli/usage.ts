import { basename, dirname } from 'node:path'
import { version } from '../../package.json'

export const VERSION = version

/** The roles the first argument picks; `all` when there is none. */
export const ROLES = ['api', 'worker', 'all', 'migrate', 'token'] as const
export type Role = (typeof ROLES)[number]

/** What `mq --help` prints: the roles, the variables a first run may want, where the rest are. */
export const USAGE = `mq ${VERSION}: a multi-tenant message queue over HTTP

usage: mq [role]          (bun start runs: mq all)
       mq --help | --version

roles:
  all       the HTTP API and the worker in one process (the default)
  api       the HTTP API on PORT only; run as many as needed
  worker    deliveries, delayed messages, schedules, trimming and the ledger only
  migrate   apply the database migrations and exit
  token     print a local JWT: mq token --tenant <uuid> [--scope "mq:admin"] [--sub alice] [--ttl 86400]

main variables (none is needed for a local run):
  PORT            HTTP port (3010)
  DATA_DIR        where a local run keeps PGlite, its private redis-server and secrets (./.data)
  DATABASE_URL    PostgreSQL; unset: embedded PGlite in DATA_DIR/pg
  REDIS_URL       Redis; unset: a private redis-server from PATH, data in DATA_DIR/redis
  NODE_ENV        development, production or test (development)
  JWT_SECRET      HS256 secret of the platform's tokens (or JWKS_URL)
  MQ_MASTER_KEY   base64 of 32 random bytes; encrypts the payloads of encrypted queues
  LOG_LEVEL       trace, debug, info, warn, error, fatal or silent (info)

Production needs DATABASE_URL, REDIS_URL, MQ_MASTER_KEY and JWT_SECRET or JWKS_URL.
Every variable is described in README.md, section "Configuration".`

/** The internal first argument that makes `mq` only create a PGlite database (src/db/pglite.ts). */
export const INIT_PGLITE_ROLE = '__init-pglite'

/** What the arguments ask for: a role to run, the usage, or the version. */
export type Command =
  | { kind: 'run'; role: Role; args: string[] }
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'unknown'; arg: string }
  | { kind: 'init-pglite'; dir: string }

export function parseCommand(argv: string[]): Command {
  const [first = 'all', ...args] = argv
  if (first === INIT_PGLITE_ROLE && args[0]) return { kind: 'init-pglite', dir: args[0] }
  if (first === '--help' || first === '-h' || first === 'help') return { kind: 'help' }
  if (first === '--version' || first === '-v' || first === 'version') return { kind: 'version' }
  if ((ROLES as readonly string[]).includes(first))
    return { kind: 'run', role: first as Role, args }
  return { kind: 'unknown', arg: first }
}

/** How to call the binary from `cwd`: `./mq` beside it, else its path. */
export function binaryCommand(execPath: string, cwd: string): string {
  return dirname(execPath) === cwd ? `./${basename(execPath)}` : execPath
}

/**
 * The one human line a development start prints: where the API, the console and the docs are,
 * and how to get a token for them. `host` is the listening address; a wildcard becomes the
 * loopback address a browser on this machine can open.
 */
export function startLine(host: string, port: number, fromSources: boolean): string {
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host
  const origin = `http://${shown.includes(':') ? `[${shown}]` : shown}:${port}`
  const token = fromSources
    ? 'bun run token -- --tenant <uuid>'
    : `${binaryCommand(process.execPath, process.cwd())} token --tenant <uuid>`
  return `MQ is up: API ${origin}/api/v1/mq, console ${origin}/console, docs ${origin}/docs; a token: ${token}`
}
