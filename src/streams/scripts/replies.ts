import type {
  PartitionPull,
  QueueEntry,
  SettledEntry,
  StoredDelivery,
  WriteResult,
  WriteStatus,
} from '../../domain/messages'
import type { PermitGrant, Removal } from '../../domain/ports'
import { decodeFields } from '../codec'

/**
 * The replies of the scripts, decoded into named fields: a reply's positions and status numbers
 * appear here and in the script that builds it, nowhere else.
 */

/** publishMessages.lua's status per message, by the number the script answers. */
const WRITE_OUTCOMES: Record<number, WriteStatus> = { 1: 'published', 2: 'scheduled', [-1]: 'full' }

/** publishMessages.lua answers four values per message: status, stream id, publishedAt, duplicate. */
const PUBLISH_STRIDE = 4

export function decodePublish(reply: unknown[], count: number): WriteResult[] {
  return Array.from({ length: count }, (_, i) => {
    const [status, streamId, publishedAt, duplicate] = reply.slice(
      i * PUBLISH_STRIDE,
      (i + 1) * PUBLISH_STRIDE
    )
    return {
      status: WRITE_OUTCOMES[Number(status)] ?? 'full',
      streamId: streamId ? String(streamId) : null,
      publishedAt: Number(publishedAt),
      duplicate: Number(duplicate) === 1,
    }
  })
}

/** Stream id, delivery count, fields, and for dead ones the count the hold gave the entry. */
type RawDelivery = [string, number, string[], number?]

function toDelivery(partition: number, [streamId, count, raw, held]: RawDelivery): StoredDelivery {
  return {
    partition,
    streamId,
    deliveryCount: Number(count),
    message: decodeFields(streamId, raw),
    ...(held !== undefined && { heldAs: Number(held) }),
  }
}

/** pull.lua: { delivered, dead, gone, expired, nextDeadline (-1: none), passed }. */
export function decodePull(reply: unknown, partition: number): PartitionPull {
  const [delivered, dead, gone, expired, next, passed] = reply as [
    RawDelivery[],
    RawDelivery[],
    number,
    number,
    number,
    number,
  ]
  return {
    delivered: delivered.map((d) => toDelivery(partition, d)),
    dead: dead.map((d) => toDelivery(partition, d)),
    gone: Number(gone),
    expired: Number(expired),
    nextDeadline: Number(next) >= 0 ? Number(next) : null,
    passed: Number(passed),
  }
}

export interface SettleReply {
  settled: number
  dead: StoredDelivery[]
  processingMs: number
  done: SettledEntry[]
}

/**
 * settle.lua: { settled, dead, summed idle ms, done }, each done entry [streamId, idleMs, about]
 * where `about` is the message id, the entry's fields, or nothing when only timing was asked.
 * `known` names the message ids the caller already had.
 */
export function decodeSettle(
  reply: unknown,
  partition: number,
  known: Map<string, string | undefined> | null
): SettleReply {
  const [settled, dead, idle, done] = reply as [
    number,
    RawDelivery[],
    number,
    Array<[string, number, string | string[]]>,
  ]
  return {
    settled: Number(settled),
    dead: dead.map((d) => toDelivery(partition, d)),
    processingMs: Number(idle),
    done: done.map(([streamId, idleMs, about]) => {
      const message =
        Array.isArray(about) && about.length > 0 ? decodeFields(streamId, about) : null
      return {
        streamId,
        idleMs: Number(idleMs),
        messageId:
          known?.get(streamId) ?? (Array.isArray(about) ? (message?.messageId ?? '') : about),
        message,
      }
    }),
  }
}

/** promoteDue.lua: { promoted, nextDue (-1: none), ...due times promoted }. */
export function decodePromote(reply: unknown): {
  promoted: number
  nextDue: number
  dueTimes: number[]
} {
  const [promoted, next, ...times] = reply as number[]
  return { promoted: Number(promoted), nextDue: Number(next), dueTimes: times.map(Number) }
}

/** takeToken.lua: { allowed (1/0), remaining, retryAfterMs, resetMs }. */
export function decodeTakeToken(reply: number[]): {
  allowed: boolean
  remaining: number
  retryAfterMs: number
  resetMs: number
} {
  const [allowed = 0, remaining = 0, retryAfterMs = 0, resetMs = 0] = reply
  return { allowed: allowed === 1, remaining, retryAfterMs, resetMs }
}

/** cancelScheduled.lua: 1 when the delayed message was removed. */
export const decodeCancelled = (reply: number): boolean => reply === 1

const DELETE_OUTCOMES: Record<number, Removal> = {
  1: 'deleted',
  2: 'cancelled',
  0: 'absent',
  [-1]: 'in_flight',
}

/**
 * deleteMessage.lua: { 1, stream id, fields } deleted; { 2 } cancelled, { 0 } not in the
 * partition, { -1 } in flight.
 */
export function decodeDeleted(
  reply: unknown[],
  partition: number
): { outcome: Removal; entry: QueueEntry | null } {
  const [code, streamId, fields] = reply as [number, string?, string[]?]
  const outcome = DELETE_OUTCOMES[Number(code)] ?? 'absent'
  return {
    outcome,
    entry:
      outcome === 'deleted' && streamId && fields
        ? { partition, streamId, message: decodeFields(streamId, fields) }
        : null,
  }
}

const THROTTLE_REASONS = { 1: 'paused', 2: 'parallelism', 3: 'rate' } as const

/** takePermits.lua: { granted, waitMs, why (0 granted, 1 paused, 2 parallelism, 3 rate) }. */
export function decodeTakePermits(reply: number[]): PermitGrant {
  const [granted = 0, waitMs = 0, why = 0] = reply.map(Number)
  const reason = THROTTLE_REASONS[why as keyof typeof THROTTLE_REASONS]
  return reason && granted === 0
    ? { granted: 0, waitMs, reason }
    : { granted, waitMs: 0, reason: null }
}
