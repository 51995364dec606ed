import { token } from '../helpers/harness'
import {
  Consumer,
  type ConsumerOptions,
  type DrainTarget,
  MqClient,
  type Outgoing,
  type PublishOptions,
  produce,
  queueWithSubscription,
} from './client'
import type { Config as ConsumerConfig } from './consumer-process'
import type { History } from './oracle'
import { ChaosRedis, ConsumerProcess, chaosDatabase, ServiceProcess, serviceEnv } from './processes'

/** A client acting with `mq:admin` for whichever tenant it is asked to, against `base()`. */
export function adminClient(base: () => string): MqClient {
  return new MqClient(base, (tenant) => token(tenant, 'mq:admin', { expiresIn: 6 * 3600 }))
}

/**
 * The set-up most cases share: a redis-server with the append-only file fsynced as asked, a
 * database, and the service in one process of role `all`, with a client for it.
 */
export async function startSingleService(fsync: 'always' | 'everysec' = 'always') {
  const redis = await ChaosRedis.start({ fsync })
  const database = await chaosDatabase()
  const service = new ServiceProcess('all', `all-${fsync}`, serviceEnv(redis, database))
  await service.start()
  return { redis, database, service, client: adminClient(() => service.url) }
}

/**
 * Consumer processes (not started) named `names`, each pulling every target's subscription of
 * `service` with `config`, recording each delivery into `history`.
 */
export function consumerProcesses(
  names: string[],
  service: ServiceProcess,
  history: History,
  config: Omit<ConsumerConfig, 'name' | 'baseUrl'>
): ConsumerProcess[] {
  return names.map(
    (name) =>
      new ConsumerProcess({ baseUrl: service.url, name, ...config }, (record) =>
        history.deliver(record)
      )
  )
}

/** When a consumer was killed, and the ids it held then (received, not settled). */
export interface Kill {
  at: number
  held: string[]
}

/**
 * Kills one of `consumers` every `everyMs`, in turn, `count` times, starting each again at once
 * as a supervisor would.
 */
export async function killInTurn(
  consumers: ConsumerProcess[],
  count: number,
  everyMs: number
): Promise<Kill[]> {
  const kills: Kill[] = []
  for (let k = 0; k < count; k++) {
    await Bun.sleep(everyMs)
    const victim = consumers[k % consumers.length]!
    const held = await victim.kill9()
    kills.push({ at: Date.now(), held })
    victim.start()
  }
  return kills
}

/**
 * How long after its kill each held message came again (ms). One that never came again had been
 * acknowledged by the killed consumer just before the kill, before it said so.
 */
export function redeliveredAfter(kills: Kill[], history: History): number[] {
  const byMessage = history.byMessage()
  return kills.flatMap((k) =>
    k.held.flatMap((id) => {
      const again = byMessage.get(id)?.find((d) => d.ts >= k.at)
      return again ? [again.ts - k.at] : []
    })
  )
}

/** For each tenant, a queue named `queue.name` with a pull subscription reading from the start. */
export function subscribedQueues(
  client: MqClient,
  tenants: string[],
  queue: Record<string, unknown> & { name: string },
  subscription: Record<string, unknown> = {}
): Promise<DrainTarget[]> {
  return Promise.all(
    tenants.map(async (tenant) => ({
      tenant,
      queue: queue.name,
      subscriptionId: await queueWithSubscription(client, tenant, queue, subscription),
    }))
  )
}

/**
 * Messages `<prefix>-0`, `<prefix>-1`, … round-robin over the targets' queues, until `count`
 * are made or `more()` says no.
 */
export function* outgoing(
  prefix: string,
  targets: Array<{ tenant: string; queue: string }>,
  opts: { count?: number; more?: () => boolean; extra?: (i: number) => Outgoing['extra'] } = {}
): Generator<Outgoing> {
  for (let i = 0; i < (opts.count ?? Number.POSITIVE_INFINITY) && (opts.more?.() ?? true); i++) {
    const { tenant, queue } = targets[i % targets.length]!
    yield { tenant, queue, messageId: `${prefix}-${i}`, extra: opts.extra?.(i) }
  }
}

/**
 * Steady traffic: `consumersPer` pull consumers on each target's subscription, recording into
 * `history`, and producers publishing `<prefix>-<n>` round-robin over the targets until
 * `stop()`, which also stops the consumers (they settle what they hold).
 */
export function steadyTraffic(
  client: MqClient,
  history: History,
  targets: DrainTarget[],
  opts: {
    prefix: string
    consumersPer?: number
    consumer?: Partial<ConsumerOptions>
    producers?: Partial<PublishOptions> & { concurrency?: number }
  }
) {
  const consumers = targets.flatMap((t) =>
    Array.from({ length: opts.consumersPer ?? 1 }, (_, n) =>
      new Consumer({
        client,
        ...t,
        name: `c${n + 1}-${t.tenant.slice(0, 4)}`,
        max: 20,
        onDelivery: (record) => history.deliver(record),
        ...opts.consumer,
      }).start()
    )
  )
  let more = true
  const producing = produce(client, history, outgoing(opts.prefix, targets, { more: () => more }), {
    concurrency: 6,
    pauseMs: 20,
    retryUntil: Date.now() + 120_000,
    ...opts.producers,
  })
  return {
    consumers,
    async stop(): Promise<void> {
      more = false
      await producing
      await Promise.all(consumers.map((c) => c.stop()))
    },
  }
}

/** Creates `queue` and a webhook subscription on it; @returns its id and signing secret. */
export async function webhook(
  client: MqClient,
  tenant: string,
  queue: string,
  handlerConfig: Record<string, unknown>,
  settings: Record<string, unknown> = {}
): Promise<{ id: string; secret: string }> {
  await client.must(tenant, 'POST', '/queues', { name: queue, maxLength: 100_000 }, 201)
  const sub = await client.must(
    tenant,
    'POST',
    '/subscriptions',
    {
      queue,
      consumerGroup: 'hooks',
      consumerName: 'hook',
      subscriptionType: 'webhook',
      offsetResetPolicy: 'earliest',
      handlerConfig,
      ...settings,
    },
    201
  )
  return { id: sub.id, secret: sub.signingSecret }
}
