import type { Context } from 'hono'
import { MqError } from '../../domain/errors'
import {
  createSubscription,
  deleteSubscription,
  getSubscription,
  listSubscriptions,
  pauseSubscription,
  resumeSubscription,
  type SubscriptionDeps,
  updateSubscription,
} from '../../domain/subscription-admin'
import type { AuditSink } from '../../observability/audit'
import type { AppEnv } from '../env'
import { presentSubscription } from '../presenters'
import { routes } from '../route'
import { createRouter, domainContext } from '../router'
import { commonErrors, errorResponse, json, jsonBody } from '../schemas/common'
import {
  CreateSubscriptionBody,
  SubscriptionIdParam,
  SubscriptionListQuery,
  SubscriptionListSchema,
  SubscriptionSchema,
  UpdateSubscriptionBody,
} from '../schemas/subscriptions'

const route = routes('Subscriptions')
const byId = { params: SubscriptionIdParam }

const create = route('post', '/', 'mq:consume', {
  summary: 'Subscribe: create a consumer in a consumer group of a queue',
  request: { body: jsonBody(CreateSubscriptionBody) },
  responses: {
    201: json(SubscriptionSchema, 'the subscription; webhooks carry `signingSecret` this once'),
    409: errorResponse('the consumer is already in that group (MQ_SUBSCRIPTION_EXISTS)'),
    ...commonErrors,
  },
})

const list = route('get', '/', 'mq:read', {
  summary: 'List subscriptions, oldest first',
  request: { query: SubscriptionListQuery },
  responses: { 200: json(SubscriptionListSchema, 'a page of subscriptions'), ...commonErrors },
})

const get = route('get', '/{id}', 'mq:read', {
  summary: 'Get a subscription with live stats',
  request: byId,
  responses: { 200: json(SubscriptionSchema, 'the subscription with stats'), ...commonErrors },
})

const update = route('put', '/{id}', 'mq:consume', {
  summary: 'Update a subscription (not its queue, group, consumer or type)',
  request: { ...byId, body: jsonBody(UpdateSubscriptionBody) },
  responses: { 200: json(SubscriptionSchema, 'the updated subscription'), ...commonErrors },
})

const remove = route('delete', '/{id}', 'mq:consume', {
  summary: 'Delete a subscription; its group goes with the last one',
  request: byId,
  responses: { 204: { description: 'deleted' }, ...commonErrors },
})

const statusRoute = <V extends 'pause' | 'resume'>(verb: V, summary: string) =>
  route('post', `/{id}/${verb}`, 'mq:consume', {
    summary,
    request: byId,
    responses: { 200: json(SubscriptionSchema, 'the subscription'), ...commonErrors },
  })

const pause = statusRoute('pause', 'Pause: no pushes, pulls answer 409, messages wait')
const resume = statusRoute('resume', 'Resume a paused subscription')

const resource = (id: string) => `subscription:${id}`

/**
 * What `mq:consume` alone may not do (API.md "Scopes"): a webhook sends the tenant's messages to
 * a URL of the caller's choosing, and a dead-letter queue other than `<queue>.dlq` creates a
 * queue of any name on first use; both are the tenant administrator's to decide.
 */
function requireAdminFor(c: Context<AppEnv>, what: string): void {
  if (!c.get('tenant').scopes.has('mq:admin')) {
    throw new MqError('MQ_FORBIDDEN', `scope 'mq:admin' is required to ${what}`)
  }
}

const namesOwnDeadLetterQueue = (queue: string, deadLetterQueue: string | null | undefined) =>
  deadLetterQueue != null && deadLetterQueue !== `${queue}.dlq`

/**
 * For a caller without `mq:admin`, refuses a change to a webhook subscription, or one naming a
 * dead-letter queue of its own. A missing subscription is left to the domain's 404.
 */
async function guardChange(
  c: Context<AppEnv>,
  deps: SubscriptionDeps,
  id: string,
  deadLetterQueue?: string | null
): Promise<void> {
  if (c.get('tenant').scopes.has('mq:admin')) return
  const sub = await deps.subscriptions.get(c.get('tenant').tenantId, id)
  if (sub === null) return
  if (sub.subscriptionType === 'webhook') requireAdminFor(c, 'change a webhook subscription')
  if (namesOwnDeadLetterQueue(sub.queue, deadLetterQueue)) {
    requireAdminFor(c, 'name a dead-letter queue other than <queue>.dlq')
  }
}

/**
 * `/api/v1/mq/subscriptions`: managing subscriptions (consumption has its own router); changes
 * are audited once they succeed.
 */
export function createSubscriptionsRouter(deps: SubscriptionDeps, audit: AuditSink) {
  const setStatus = async (c: Context<AppEnv>, id: string, to: 'paused' | 'resumed') => {
    const ctx = domainContext(c)
    await guardChange(c, deps, id)
    const sub = await (to === 'paused' ? pauseSubscription : resumeSubscription)(deps, ctx, id)
    audit.record(ctx, { operation: `subscription.${to}`, resource: resource(sub.id) })
    return c.json(presentSubscription(sub), 200)
  }
  return createRouter()
    .openapi(create, async (c) => {
      const ctx = domainContext(c)
      const draft = c.req.valid('json')
      if (draft.subscriptionType === 'webhook') requireAdminFor(c, 'create a webhook subscription')
      if (namesOwnDeadLetterQueue(draft.queue, draft.deadLetterQueue)) {
        requireAdminFor(c, 'name a dead-letter queue other than <queue>.dlq')
      }
      const { subscription, signingSecret } = await createSubscription(deps, ctx, draft)
      const { queue, consumerGroup, consumerName, subscriptionType } = subscription
      audit.record(ctx, {
        operation: 'subscription.created',
        resource: resource(subscription.id),
        details: { queue, consumerGroup, consumerName, subscriptionType },
      })
      const body = presentSubscription(subscription)
      return c.json(signingSecret ? { ...body, signingSecret } : body, 201)
    })
    .openapi(list, async (c) => {
      const page = await listSubscriptions(deps, domainContext(c), c.req.valid('query'))
      return c.json(
        { items: page.items.map(presentSubscription), nextCursor: page.nextCursor },
        200
      )
    })
    .openapi(get, async (c) => {
      const sub = await getSubscription(deps, domainContext(c), c.req.valid('param').id)
      return c.json(presentSubscription(sub), 200)
    })
    .openapi(update, async (c) => {
      const { id } = c.req.valid('param')
      const patch = c.req.valid('json')
      const ctx = domainContext(c)
      await guardChange(c, deps, id, patch.deadLetterQueue)
      const sub = await updateSubscription(deps, ctx, id, patch)
      audit.record(ctx, {
        operation: 'subscription.updated',
        resource: resource(id),
        details: { fields: Object.keys(patch) },
      })
      return c.json(presentSubscription(sub), 200)
    })
    .openapi(remove, async (c) => {
      const { id } = c.req.valid('param')
      const ctx = domainContext(c)
      await guardChange(c, deps, id)
      await deleteSubscription(deps, ctx, id)
      audit.record(ctx, { operation: 'subscription.deleted', resource: resource(id) })
      return c.body(null, 204)
    })
    .openapi(pause, (c) => setStatus(c, c.req.valid('param').id, 'paused'))
    .openapi(resume, (c) => setStatus(c, c.req.valid('param').id, 'resumed'))
}
