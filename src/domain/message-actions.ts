import type { DomainContext } from './context'
import { MqError, notFound } from './errors'
import { type InspectDeps, queueOf, type Redriven, redriveBatch } from './inspect'

/**
 * Removes one message of a queue: a scheduled one is cancelled, one in its stream deleted,
 * unless a consumer group has it out (pulled or pushed, not yet acked or nacked). The check
 * and the delete are one script, so a concurrent pull either delivers it first (and this is
 * refused) or never sees it.
 * @returns whether it was `deleted` from its stream or `cancelled` while scheduled.
 * @throws MqError MQ_MESSAGE_IN_FLIGHT when a group has it out, MQ_MESSAGE_NOT_FOUND when
 *   the queue has no such message in Redis.
 */
export async function removeQueueMessage(
  deps: InspectDeps,
  ctx: DomainContext,
  queueName: string,
  messageId: string
): Promise<'deleted' | 'cancelled'> {
  const queue = await queueOf(deps, ctx, queueName)
  const { outcome, entry } = await deps.messages.removeMessage(queue, messageId)
  if (outcome === 'in_flight') {
    throw new MqError(
      'MQ_MESSAGE_IN_FLIGHT',
      `message '${messageId}' is out with a consumer; settle it first`
    )
  }
  if (outcome === 'absent') throw notFound('MQ_MESSAGE_NOT_FOUND', 'message', messageId)
  // A cancelled message never entered its stream, so the ledger has nothing of it to mark.
  if (entry) await deps.removals.recordRemovals(queue, [entry], Date.now())
  return outcome
}

/**
 * Moves one dead letter of `dlqName` back to the queue it came from (header
 * `x-mq-original-queue`), the way {@link redriveBatch} moves many.
 * @returns where it went.
 * @throws MqError MQ_MESSAGE_NOT_FOUND when the dead-letter queue has no such message in its
 *   stream; MQ_VALIDATION_FAILED when it names no other queue to go back to;
 *   MQ_QUEUE_NOT_FOUND when that queue is gone; MQ_QUEUE_PAUSED, MQ_QUEUE_FULL.
 */
export async function redriveQueueMessage(
  deps: InspectDeps,
  ctx: DomainContext,
  dlqName: string,
  messageId: string
): Promise<Redriven> {
  const dlq = await queueOf(deps, ctx, dlqName)
  const found = await deps.messages.findMessage(dlq, messageId)
  if (!found || found.streamId === null) {
    throw notFound('MQ_MESSAGE_NOT_FOUND', 'message', messageId)
  }
  const origin = found.message.headers['x-mq-original-queue']
  if (origin === undefined || origin === dlqName) {
    throw new MqError('MQ_VALIDATION_FAILED', `message '${messageId}' is not a dead letter`, {
      issues: [
        {
          path: 'messageId',
          code: 'not_dead_letter',
          message: 'has no x-mq-original-queue header naming another queue',
        },
      ],
    })
  }
  const target = await deps.queues.get(ctx.tenantId, origin)
  if (!target) throw notFound('MQ_QUEUE_NOT_FOUND', 'queue', origin)
  const entry = { partition: found.partition, streamId: found.streamId, message: found.message }
  const { placed } = await redriveBatch(deps, dlq, [entry], undefined, async () => target)
  const [where] = placed
  if (!where) throw new MqError('MQ_QUEUE_FULL', `queue '${origin}' is full`, undefined, 1)
  return where
}
