/**
 * Each operation's stable `operationId` (what client generators name their methods after) and
 * its description, for the OpenAPI document, keyed by method and path as the document spells
 * them. An id, once published, does not change. One table instead of a field on each route:
 * `/health` is mounted twice from one route, and the two need different ids.
 */
export const OPERATIONS: Record<string, { id: string; description: string }> = {
  'GET /health': {
    id: 'getHealth',
    description:
      'No credentials. `healthy` or `degraded` answers 200, `unhealthy` 503; each check says `healthy` or `unhealthy`, without why (see `/internal/mq/health-detailed`).',
  },
  'GET /api/v1/mq/health': {
    id: 'getApiHealth',
    description: 'The same answer as `GET /health`, under the API base.',
  },
  'GET /api/v1/mq/health/ping': {
    id: 'ping',
    description: 'No credentials. One round trip to Redis, with its latency in ms.',
  },
  'GET /api/v1/mq/status': {
    id: 'getStatus',
    description:
      'For the caller’s tenant, or every tenant with the service token: Redis’s figures, each queue’s length, pending and consumers, and the process’s memory and uptime.',
  },
  'POST /api/v1/mq/queues': {
    id: 'createQueue',
    description:
      'Names are unique per tenant. Unset settings take the service’s defaults (`DEFAULT_TTL`, `MAX_QUEUE_LENGTH`).',
  },
  'GET /api/v1/mq/queues': {
    id: 'listQueues',
    description: 'Pages by name: pass the answer’s `nextCursor` as `cursor` for the next page.',
  },
  'GET /api/v1/mq/queues/{name}': {
    id: 'getQueue',
    description: 'The queue’s settings and its live figures from Redis (`stats`).',
  },
  'PUT /api/v1/mq/queues/{name}': {
    id: 'updateQueue',
    description: 'Changes only the fields sent; the name and partition count stay.',
  },
  'DELETE /api/v1/mq/queues/{name}': {
    id: 'deleteQueue',
    description: 'Removes the queue, its messages, subscriptions and schedules.',
  },
  'POST /api/v1/mq/queues/{name}/purge': {
    id: 'purgeQueue',
    description: 'Removes every stored and scheduled message; subscriptions and their groups stay.',
  },
  'GET /api/v1/mq/queues/{name}/messages': {
    id: 'peekMessages',
    description:
      'Reads messages without delivering them: nothing changes for any consumer. Use it to look at a dead-letter queue.',
  },
  'POST /api/v1/mq/queues/{name}/redrive': {
    id: 'redriveMessages',
    description:
      'Moves dead letters (up to `max`) back to the queue each came from, or to `toQueue`, with a fresh delivery count.',
  },
  'GET /api/v1/mq/queues/{name}/messages/{messageId}': {
    id: 'getQueueMessage',
    description:
      'The message from Redis while it is scheduled, in its stream or in a dead-letter queue, from the ledger once trimmed; with every recorded delivery attempt (outcome, receiver status code or nack reason).',
  },
  'DELETE /api/v1/mq/queues/{name}/messages/{messageId}': {
    id: 'deleteQueueMessage',
    description:
      'Removes one message, scheduled or stored. A message a consumer group has out (pulled or pushed, not yet settled) answers 409 MQ_MESSAGE_IN_FLIGHT and stays.',
  },
  'POST /api/v1/mq/queues/{name}/messages/{messageId}/redrive': {
    id: 'redriveQueueMessage',
    description:
      'Moves one dead letter of this dead-letter queue back to the queue it came from (header `x-mq-original-queue`), as `POST /queues/{name}/redrive` moves many.',
  },
  'POST /api/v1/mq/subscriptions': {
    id: 'createSubscription',
    description:
      'A `redis_consumer` subscription is pulled from; a `webhook` one is pushed to by the worker, signed with the `signingSecret` shown in this answer only.',
  },
  'GET /api/v1/mq/subscriptions': {
    id: 'listSubscriptions',
    description: 'Filter by `queue` and `status`; pages with `cursor`.',
  },
  'GET /api/v1/mq/subscriptions/{id}': {
    id: 'getSubscription',
    description:
      'The settings and live figures: lag, pending, delivered, acked, failed, dead-lettered.',
  },
  'PUT /api/v1/mq/subscriptions/{id}': {
    id: 'updateSubscription',
    description: 'Changes only the fields sent.',
  },
  'DELETE /api/v1/mq/subscriptions/{id}': {
    id: 'deleteSubscription',
    description: 'The consumer group, and what it had pending, goes with its last subscription.',
  },
  'POST /api/v1/mq/subscriptions/{id}/pause': {
    id: 'pauseSubscription',
    description: 'Messages keep arriving and wait; pulls answer 409 until it is resumed.',
  },
  'POST /api/v1/mq/subscriptions/{id}/resume': {
    id: 'resumeSubscription',
    description: 'Delivery starts again from where it stopped.',
  },
  'POST /api/v1/mq/subscriptions/{id}/pull': {
    id: 'pullMessages',
    description:
      'Each delivery carries a `receipt` to ack or nack it with. What is not acked within the visibility timeout is delivered again.',
  },
  'POST /api/v1/mq/subscriptions/{id}/ack': {
    id: 'ackMessages',
    description:
      'Settles deliveries by their receipts; an unknown or expired receipt is not counted.',
  },
  'POST /api/v1/mq/subscriptions/{id}/nack': {
    id: 'nackMessages',
    description:
      'Each message comes back after `delayMs` (or the subscription’s backoff), or goes to the dead-letter queue once it has had `maxRetryAttempts` deliveries.',
  },
  'POST /api/v1/mq/subscriptions/{id}/seek': {
    id: 'seekSubscription',
    description:
      'Replays or skips for the whole consumer group, from the earliest message, the latest, or a time.',
  },
  'GET /api/v1/mq/messages/{messageId}': {
    id: 'getMessage',
    description:
      'The message with its status, each consumer group’s state and the recorded delivery attempts.',
  },
  'DELETE /api/v1/mq/messages/{messageId}': {
    id: 'cancelMessage',
    description:
      'Only a delayed or scheduled message not yet due can be cancelled (409 otherwise).',
  },
  'GET /api/v1/mq/schedules': {
    id: 'listSchedules',
    description: 'Filter by `queue`; pages with `cursor`.',
  },
  'GET /api/v1/mq/schedules/{id}': {
    id: 'getSchedule',
    description: 'Its cron, next and last run and how many times it has run.',
  },
  'PUT /api/v1/mq/schedules/{id}': {
    id: 'updateSchedule',
    description: 'Changes only the fields sent.',
  },
  'DELETE /api/v1/mq/schedules/{id}': {
    id: 'deleteSchedule',
    description: 'Messages it already published stay.',
  },
  'POST /api/v1/mq/schedules/{id}/pause': {
    id: 'pauseSchedule',
    description: 'It does not fire until resumed.',
  },
  'POST /api/v1/mq/schedules/{id}/resume': {
    id: 'resumeSchedule',
    description: 'It fires from its next occurrence after now.',
  },
  'POST /api/v1/mq/publish': {
    id: 'publishMessage',
    description:
      '201 when stored; with a `messageId` seen within the dedup window, 200 and stored once. `key` picks the partition, so one key’s messages keep their order.',
  },
  'POST /api/v1/mq/publish/batch': {
    id: 'publishBatch',
    description:
      'Every message is validated first: one invalid message fails the request, naming its index, and nothing is stored.',
  },
  'POST /api/v1/mq/publish/delayed': {
    id: 'publishDelayed',
    description:
      'Stored now with status `scheduled`, delivered no earlier than `delayMs` from now.',
  },
  'POST /api/v1/mq/publish/scheduled': {
    id: 'publishScheduled',
    description:
      'With `deliverAt`, one message delivered no earlier than then; with `cron` (5 or 6 fields), a recurring schedule (answered with the schedule).',
  },
  'POST /api/v1/mq/topics/{name}/publish': {
    id: 'publishToTopic',
    description: '`POST /publish` with the queue named in the path.',
  },
  'GET /api/v1/mq/metrics': {
    id: 'getMetrics',
    description:
      'For the caller’s tenant, or every tenant with the service token. Rates are per second over the last minute, across every process.',
  },
  'GET /api/v1/mq/metrics/topics': {
    id: 'getTopicMetrics',
    description: 'One entry per queue.',
  },
  'GET /api/v1/mq/metrics/consumers': {
    id: 'getConsumerMetrics',
    description: 'One entry per subscription.',
  },
  'GET /metrics': {
    id: 'getPrometheusMetrics',
    description:
      'Prometheus text format. Labelled by route pattern and queue, never by raw path or payload.',
  },
  'POST /internal/mq/user-events': {
    id: 'publishUserEvent',
    description: 'Service token only; the tenant is `tenantId` or `X-Tenant-Id`.',
  },
  'POST /internal/mq/user-notifications': {
    id: 'publishUserNotification',
    description: 'Service token only; the tenant is `tenantId` or `X-Tenant-Id`.',
  },
  'POST /internal/mq/audit-logs': {
    id: 'publishAuditLog',
    description: 'Service token only; the tenant is `tenantId` or `X-Tenant-Id`.',
  },
  'GET /internal/mq/audit-queue-status': {
    id: 'getAuditQueueStatus',
    description: 'Service token only; the tenant is `tenantId` or `X-Tenant-Id`.',
  },
  'POST /internal/mq/notifications': {
    id: 'publishNotification',
    description: 'Service token only; the tenant is `tenantId` or `X-Tenant-Id`.',
  },
  'GET /internal/mq/notification-queue': {
    id: 'getNotificationQueueStatus',
    description: 'Service token only; the tenant is `tenantId` or `X-Tenant-Id`.',
  },
  'GET /internal/mq/metrics': {
    id: 'getInternalMetrics',
    description: 'Service token only. Every tenant, or the one `X-Tenant-Id` names.',
  },
  'GET /internal/mq/health-detailed': {
    id: 'getHealthDetailed',
    description: 'Service token only. Each check with its status, timing and, when it failed, why.',
  },
}
