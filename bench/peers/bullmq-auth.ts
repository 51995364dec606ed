/**
 * The "bullmq+auth" peer: BullMQ's `Queue.add` (`addBulk` for a batch) behind what a team's own
 * publish route checks first (`auth.ts`).
 * Env: REDIS_URL, JWT_SECRET (the service's), PORT.
 */
import { publishAuth } from './auth'
import { bullmqPeer } from './bullmq'
import { requiredEnv, servePeer } from './serve'

servePeer(bullmqPeer(requiredEnv('REDIS_URL'), publishAuth(requiredEnv('JWT_SECRET'))))
