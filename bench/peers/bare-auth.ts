/**
 * The "bare+auth" peer: the bare peer's one XADD behind what a team's own publish route checks
 * first (`auth.ts`): the simplest secure route, the service's fair peer for single publish.
 * Env: REDIS_URL, JWT_SECRET (the service's), PORT.
 */
import { publishAuth } from './auth'
import { barePeer } from './bare'
import { requiredEnv, servePeer } from './serve'

servePeer(barePeer(requiredEnv('REDIS_URL'), publishAuth(requiredEnv('JWT_SECRET'))))
