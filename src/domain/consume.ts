import { type ConsumeDeps, consumable } from './consume-deps'
import type { DomainContext } from './context'
import type { GroupPosition } from './messages'

export { moveToDeadLetter } from './consume-dead-letter'
export type {
  ConsumeDeps,
  EntryWaiter,
  PayloadOpener,
  ReceiptCodec,
  ReceiptData,
} from './consume-deps'
export { type Delivery, pullMessages, pullOnce } from './consume-pull'
export { ackDeliveries, ackMessages, nackDeliveries, nackMessages } from './consume-settle'

/**
 * Moves the whole group's read position: `earliest` replays what the stream still holds,
 * `latest` skips to new messages, a time replays from then on.
 * @returns the position as a stream id.
 */
export async function seekSubscription(
  deps: ConsumeDeps,
  ctx: DomainContext,
  subscriptionId: string,
  to: GroupPosition
): Promise<string> {
  const { sub, queue } = await consumable(deps, ctx, subscriptionId)
  return deps.messages.seek(queue, sub.consumerGroup, to)
}
