import { randomBytes, randomUUID } from 'node:crypto'
import type { DomainContext, Principal } from './context'
import { MqError, notFound } from './errors'
import type { FlowFigures } from './flow'
import type { GroupStore, QueueStore, SubscriptionStore } from './ports'
import { QUEUE_NAME, type Queue } from './queues'
import {
  deadLetterQueueOf,
  type Subscription,
  type SubscriptionCounters,
  type SubscriptionListQuery,
  type SubscriptionSettings,
  type SubscriptionType,
} from './subscriptions'

/** Where a sealed secret belongs; the same binding the payload cipher uses. */
interface SealContext {
  tenantId: string
  queueId: string
  messageId: string
}

/** Seals webhook signing secrets at rest (the payload cipher, keyed per tenant). */
export interface SecretSealer {
  encrypt(plaintext: string, ctx: SealContext): string
  decrypt(envelope: string, ctx: SealContext): string
}

/** What the subscription verbs need, built once at start-up. */
export interface SubscriptionDeps {
  queues: QueueStore
  subscriptions: SubscriptionStore
  messages: GroupStore
  sealer: SecretSealer
  /** `sessionTimeoutMs` defaults to the configured `CONSUMER_TIMEOUT`. */
  defaults: { sessionTimeoutMs: number }
  /**
   * Why a webhook URL may not be called (scheme, user info, a host resolving to a private,
   * loopback, link-local or metadata address), or null when it may.
   */
  checkWebhookUrl(url: string): Promise<string | null>
  /**
   * The subscription's latest delivery or ack, fresher than the cached row's (written in
   * batches off the hot path, src/db/last-consumed.ts); the row's when left out.
   */
  lastConsumedAt?(tenantId: string, id: string): Promise<Date | null>
  /** A webhook's flow limits and how they act now; no `stats.flow` when left out. */
  flowFigures?(sub: Subscription): Promise<FlowFigures>
}

/** Defaults of API.md "Subscriptions" for what a creating request leaves out. */
export const SUBSCRIPTION_DEFAULTS = {
  offsetResetPolicy: 'latest',
  maxPollRecords: 500,
  heartbeatIntervalMs: 3000,
  handlerConfig: {},
  deadLetterQueue: null,
  maxRetryAttempts: 3,
  retryDelayMs: 1000,
  retryBackoff: 'exponential',
  messageFilter: null,
  ordering: 'none',
} as const satisfies Omit<SubscriptionSettings, 'sessionTimeoutMs'>

/** Defaults of a webhook's `handlerConfig` besides its required `url`. */
export const WEBHOOK_DEFAULTS = { method: 'POST', headers: {}, timeoutMs: 15_000 } as const

/** A creating request; `kafka_consumer` is named by the contract only to be refused. */
export interface CreateSubscriptionInput extends Partial<SubscriptionSettings> {
  queue: string
  consumerGroup: string
  consumerName: string
  subscriptionType: SubscriptionType | 'kafka_consumer'
}

/** A subscription with its live figures (API.md: only `GET /subscriptions/{id}` has them). */
export type SubscriptionStats = SubscriptionCounters & {
  lag: number
  pending: number
  flow?: FlowFigures
}

/** `messageId` of the seal context: keeps a sealed secret from passing as a sealed payload. */
const SIGNING_SECRET_PURPOSE = 'signing-secret'

const sealContext = (sub: Pick<Subscription, 'tenantId' | 'id'>): SealContext => ({
  tenantId: sub.tenantId,
  queueId: sub.id,
  messageId: SIGNING_SECRET_PURPOSE,
})

/** A 400 in the shape the HTTP validator gives, for rules a schema cannot see. */
const invalid = (path: string, message: string) =>
  new MqError('MQ_VALIDATION_FAILED', `${path}: ${message}`, {
    issues: [{ path, code: 'custom', message }],
  })

const subscriptionNotFound = (id: string) =>
  notFound('MQ_SUBSCRIPTION_NOT_FOUND', 'subscription', id)

/**
 * Refuses a caller the queue's `allowedConsumers` (when non-empty) does not list by its JWT
 * `sub` or `X-Service-Name`.
 * @throws MqError MQ_FORBIDDEN
 */
export function assertMayConsume(queue: Queue, principal: Principal): void {
  const name = principal.name
  if (queue.allowedConsumers.length > 0 && (!name || !queue.allowedConsumers.includes(name))) {
    throw new MqError(
      'MQ_FORBIDDEN',
      `'${name ?? 'anonymous'}' may not consume from queue '${queue.name}'`
    )
  }
}

/**
 * A webhook's `handlerConfig` with defaults filled in, its URL refused early when it points
 * where the service may not go. The delivery worker checks again at every attempt, since what
 * a name resolves to can change.
 * @throws MqError MQ_VALIDATION_FAILED without an http(s) `url`, or for an unsafe one.
 */
async function webhookConfig(
  deps: Pick<SubscriptionDeps, 'checkWebhookUrl'>,
  config: Record<string, unknown>
): Promise<Record<string, unknown>> {
  const url = config.url
  if (typeof url !== 'string') throw invalid('handlerConfig.url', 'a webhook needs a url')
  if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) {
    throw invalid('handlerConfig.url', 'must be an http or https URL')
  }
  const refusal = await deps.checkWebhookUrl(url)
  if (refusal) throw invalid('handlerConfig.url', refusal)
  return { ...WEBHOOK_DEFAULTS, ...config }
}

/**
 * Refuses flow control on a pull subscription: its consumers pull at their own pace, and a
 * limit the service could not hold would mislead.
 * @throws MqError MQ_VALIDATION_FAILED
 */
function refuseFlowOnPull(config: Record<string, unknown> | undefined): void {
  for (const field of ['rateLimitPerSecond', 'parallelism']) {
    if (config?.[field] !== undefined) {
      throw invalid(`handlerConfig.${field}`, 'only webhook subscriptions are pushed and limited')
    }
  }
}

/**
 * A dead-letter queue that is the queue itself would feed failures back to their consumers;
 * one that could not exist (the default `<queue>.dlq` of a queue named with 197 to 200
 * characters) would leave a message out of attempts with nowhere to go.
 */
function checkDeadLetterQueue(queue: Queue, deadLetterQueue: string | null): void {
  if (deadLetterQueue === queue.name) {
    throw invalid('deadLetterQueue', 'must not be the subscribed queue itself')
  }
  const name = deadLetterQueueOf({ queue: queue.name, deadLetterQueue })
  if (!QUEUE_NAME.test(name)) {
    throw invalid(
      'deadLetterQueue',
      `'${name}' cannot be a queue name (at most 200 characters): name a dead-letter queue`
    )
  }
}

/**
 * Loads a subscription of the tenant with its queue, for every verb that acts on one (the
 * consumption verbs too). A subscription whose queue is gone (deleted, perhaps recreated
 * under the same name) is gone with it, even while a cache still holds it.
 * @throws MqError MQ_SUBSCRIPTION_NOT_FOUND, also for another tenant's subscription or an id
 * that is not a UUID.
 */
export async function loadSubscription(
  deps: Pick<SubscriptionDeps, 'queues' | 'subscriptions'>,
  ctx: DomainContext,
  id: string
): Promise<{ subscription: Subscription; queue: Queue }> {
  const subscription = await deps.subscriptions.get(ctx.tenantId, id)
  if (!subscription) throw subscriptionNotFound(id)
  const queue = await deps.queues.get(ctx.tenantId, subscription.queue)
  if (!queue || queue.id !== subscription.queueId) throw subscriptionNotFound(id)
  return { subscription, queue }
}

/**
 * Creates a subscription and its consumer group on every partition of the queue. The group
 * starts at `offsetResetPolicy` (`earliest`: every message still in the stream; `latest`: only
 * new ones) when this subscription creates it; joining an existing group keeps its position.
 * The row is written first, so a concurrent delete of the group's last other subscription
 * either sees this one and keeps the group, or removes it before `ensureGroup` recreates it.
 * @returns the subscription and, for webhooks, the signing secret in clear (shown only here).
 * @throws MqError MQ_QUEUE_NOT_FOUND, MQ_FORBIDDEN (`allowedConsumers`),
 * MQ_VALIDATION_FAILED (`kafka_consumer`, webhook without a url or with an unsafe one, a
 * `messageFilter`, `maxRetryAttempts`, `deadLetterQueue` or `ordering` other than the group's),
 * MQ_SUBSCRIPTION_EXISTS.
 */
export async function createSubscription(
  deps: SubscriptionDeps,
  ctx: DomainContext,
  input: CreateSubscriptionInput
): Promise<{ subscription: Subscription; signingSecret: string | null }> {
  const { subscriptionType, ...settings } = input
  if (subscriptionType === 'kafka_consumer') {
    throw invalid('subscriptionType', 'kafka_consumer is reserved and not supported')
  }
  const isWebhook = subscriptionType === 'webhook'
  if (!isWebhook) refuseFlowOnPull(settings.handlerConfig)
  const handlerConfig = isWebhook
    ? await webhookConfig(deps, settings.handlerConfig ?? {})
    : (settings.handlerConfig ?? {})
  const queue = await deps.queues.get(ctx.tenantId, input.queue)
  if (!queue) throw notFound('MQ_QUEUE_NOT_FOUND', 'queue', input.queue)
  assertMayConsume(queue, ctx.principal)
  const [mate] = await deps.subscriptions.inGroup(ctx.tenantId, queue.id, input.consumerGroup)
  checkDeadLetterQueue(queue, settings.deadLetterQueue ?? mate?.deadLetterQueue ?? null)

  const id = randomUUID()
  const signingSecret = isWebhook ? `whsec_${randomBytes(32).toString('base64')}` : null
  const subscription = await deps.subscriptions.create(ctx.tenantId, {
    ...SUBSCRIPTION_DEFAULTS,
    sessionTimeoutMs: deps.defaults.sessionTimeoutMs,
    // Joining a group takes the settings its subscriptions share unless the request names them.
    ...(mate && {
      messageFilter: mate.messageFilter,
      maxRetryAttempts: mate.maxRetryAttempts,
      deadLetterQueue: mate.deadLetterQueue,
      ordering: mate.ordering,
    }),
    ...settings,
    handlerConfig,
    id,
    queueId: queue.id,
    queue: queue.name,
    subscriptionType,
    signingSecret: signingSecret && deps.sealer.encrypt(signingSecret, sealContext({ ...ctx, id })),
  })
  try {
    await deps.messages.ensureGroup(
      queue,
      subscription.consumerGroup,
      subscription.offsetResetPolicy
    )
  } catch (err) {
    // Without its group the subscription could never deliver; the caller retries afresh.
    await deps.subscriptions.remove(ctx.tenantId, id).catch(() => {})
    throw err
  }
  return { subscription, signingSecret }
}

/** The signing secret of a webhook subscription in clear, for signing its deliveries. */
export function openSigningSecret(sealer: SecretSealer, sub: Subscription): string | null {
  return sub.signingSecret && sealer.decrypt(sub.signingSecret, sealContext(sub))
}

/**
 * A subscription with its live figures: lag and pending of its group, and its own delivery
 * outcome counters.
 * @throws MqError MQ_SUBSCRIPTION_NOT_FOUND
 */
export async function getSubscription(
  deps: SubscriptionDeps,
  ctx: DomainContext,
  id: string
): Promise<Subscription & { stats: SubscriptionStats }> {
  const { subscription, queue } = await loadSubscription(deps, ctx, id)
  const [group, counters, lastConsumedAt, flow] = await Promise.all([
    deps.messages.groupStats(queue, subscription.consumerGroup),
    deps.messages.counters(subscription),
    deps.lastConsumedAt?.(ctx.tenantId, subscription.id) ?? subscription.lastConsumedAt,
    subscription.subscriptionType === 'webhook' ? deps.flowFigures?.(subscription) : undefined,
  ])
  const stats = { ...group, ...counters, ...(flow && { flow }) }
  return { ...subscription, lastConsumedAt, stats }
}

/** A page of the tenant's subscriptions, oldest first. */
export function listSubscriptions(
  deps: SubscriptionDeps,
  ctx: DomainContext,
  query: SubscriptionListQuery
): Promise<{ items: Subscription[]; nextCursor: string | null }> {
  return deps.subscriptions.list(ctx.tenantId, query)
}

/**
 * Changes settings; queue, group, consumer and type are fixed for a subscription's life.
 * A new `offsetResetPolicy` is stored but moves nothing: `seek` moves a group. A setting the
 * group's subscriptions share changes only while no other subscription is in the group.
 * `ordering` never changes: entries parked behind their key's head would be left behind.
 * @throws MqError MQ_SUBSCRIPTION_NOT_FOUND, MQ_VALIDATION_FAILED
 */
export async function updateSubscription(
  deps: SubscriptionDeps,
  ctx: DomainContext,
  id: string,
  patch: Partial<SubscriptionSettings>
): Promise<Subscription> {
  const { subscription, queue } = await loadSubscription(deps, ctx, id)
  if (patch.ordering !== undefined && patch.ordering !== subscription.ordering) {
    throw invalid('ordering', 'is fixed when the subscription is created')
  }
  if (subscription.subscriptionType !== 'webhook') refuseFlowOnPull(patch.handlerConfig)
  checkDeadLetterQueue(
    queue,
    patch.deadLetterQueue === undefined ? subscription.deadLetterQueue : patch.deadLetterQueue
  )
  const handlerConfig =
    patch.handlerConfig && subscription.subscriptionType === 'webhook'
      ? await webhookConfig(deps, patch.handlerConfig)
      : patch.handlerConfig
  const updated = await deps.subscriptions.update(ctx.tenantId, id, { ...patch, handlerConfig })
  if (!updated) throw subscriptionNotFound(id)
  return updated
}

/**
 * Deletes a subscription, leaving no key of it in Redis. Its consumer group goes with the
 * group's last subscription, pending deliveries and all; otherwise its consumer goes, and
 * what it held is delivered again to the group's others at once (its receipts, bound to the
 * deleted subscription, could never acknowledge it). Metadata goes first, like a queue's:
 * from then on no new pull can use the group through it.
 * @throws MqError MQ_SUBSCRIPTION_NOT_FOUND
 */
export async function deleteSubscription(
  deps: SubscriptionDeps,
  ctx: DomainContext,
  id: string
): Promise<void> {
  const { subscription, queue } = await loadSubscription(deps, ctx, id)
  if (!(await deps.subscriptions.remove(ctx.tenantId, id))) throw subscriptionNotFound(id)
  const group = subscription.consumerGroup
  const [heir] = await deps.subscriptions.inGroup(ctx.tenantId, queue.id, group)
  if (heir === undefined) {
    await deps.messages.removeGroup(queue, group)
  } else {
    await deps.messages.removeConsumer(queue, group, subscription.consumerName, heir.consumerName)
  }
  await deps.messages.clearCounters(subscription)
}

/**
 * Pauses a subscription: no pushes, pulls answer 409 MQ_SUBSCRIPTION_PAUSED, messages wait.
 * @throws MqError MQ_SUBSCRIPTION_NOT_FOUND
 */
export function pauseSubscription(
  deps: SubscriptionDeps,
  ctx: DomainContext,
  id: string
): Promise<Subscription> {
  return setStatus(deps, ctx, id, 'paused')
}

/**
 * Resumes a subscription, clearing why it was paused (e.g. a webhook's `410 Gone`).
 * @throws MqError MQ_SUBSCRIPTION_NOT_FOUND
 */
export function resumeSubscription(
  deps: SubscriptionDeps,
  ctx: DomainContext,
  id: string
): Promise<Subscription> {
  return setStatus(deps, ctx, id, 'active')
}

async function setStatus(
  deps: SubscriptionDeps,
  ctx: DomainContext,
  id: string,
  status: Subscription['status']
): Promise<Subscription> {
  await loadSubscription(deps, ctx, id)
  const patch = status === 'active' ? { status, statusReason: null } : { status }
  const updated = await deps.subscriptions.update(ctx.tenantId, id, patch)
  if (!updated) throw subscriptionNotFound(id)
  return updated
}
