import { parseArgs } from 'node:util'
import { SignJWT } from 'jose'
import { SCOPES } from '../domain/context'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const USAGE =
  'usage: token --tenant <uuid> [--scope "mq:admin mq:publish"] [--sub alice] [--ttl seconds]'

const usageError = (problem: string) => new Error(`${problem}\n${USAGE}`)

function parseTokenArgs(args: string[]) {
  try {
    return parseArgs({
      // `bun run token -- --tenant …` passes the separator through.
      args: args.filter((a) => a !== '--'),
      options: {
        tenant: { type: 'string' },
        scope: { type: 'string', default: 'mq:admin' },
        sub: { type: 'string', default: 'local-user' },
        ttl: { type: 'string', default: '86400' },
      },
      strict: true,
    }).values
  } catch (err) {
    // parseArgs names the bad option but not what the good ones are.
    throw usageError((err as Error).message)
  }
}

/**
 * `token --tenant <uuid> [--scope "mq:admin"] [--sub alice] [--ttl 86400]`: mints an HS256
 * JWT for local use with the service's secret.
 * @returns the token.
 * @throws Error with a usage line when the arguments are wrong.
 */
export async function mintToken(args: string[], secret: string | undefined): Promise<string> {
  const values = parseTokenArgs(args)
  if (!values.tenant || !UUID.test(values.tenant)) throw usageError('--tenant must be a UUID')
  const scopes = values.scope.split(/\s+/).filter(Boolean)
  const unknown = scopes.filter((s) => !(SCOPES as readonly string[]).includes(s))
  if (unknown.length > 0) {
    throw usageError(`unknown scope ${unknown.join(', ')}; one of ${SCOPES.join(', ')}`)
  }
  const ttl = Number(values.ttl)
  if (!Number.isInteger(ttl) || ttl < 1) throw usageError('--ttl must be a whole number of seconds')
  if (!secret)
    throw new Error(
      'tokens can be minted only with JWT_SECRET (this service verifies with JWKS_URL)'
    )
  return new SignJWT({ tid: values.tenant.toLowerCase(), scope: scopes.join(' ') })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(values.sub)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttl)
    .sign(new TextEncoder().encode(secret))
}
