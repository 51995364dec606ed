import type { Subscription } from '../domain/subscriptions'
import { type Loop, Pause, STOP_DEADLINE_MS } from './loop'
import { Dispatcher, type DispatcherDeps, type Shared } from './webhook-dispatcher'
import { Slots } from './webhook-flow'

/** What the delivery loop needs; the composition root (`src/wiring/worker.ts`) builds it. */
export interface WebhookDeliveryDeps extends DispatcherDeps {
  /** Every active webhook subscription of every tenant, read afresh (not from a cache). */
  listActiveWebhooks(): Promise<Subscription[]>
}

export interface WebhookDeliveryOptions {
  /**
   * Deliveries in flight per subscription (`MAX_CONCURRENT_CONSUMERS`), each from its pull
   * until it is settled: the bound on requests one endpoint can have open at once.
   */
  perSubscription: number
  /** Requests in flight across all subscriptions of this process. */
  maxInFlight?: number
  /** Cap on a subscription's `timeoutMs` (`PROCESSING_TIMEOUT_MS`). */
  maxTimeoutMs: number
  /** How often subscriptions are re-read: pause, resume, delete and edits take effect this fast. */
  refreshMs?: number
  /** How long stop() waits for requests in flight before abandoning them. */
  stopDeadlineMs?: number
}

const REFRESH_MS = 1000
/**
 * Requests in flight per process across all subscriptions, unless one subscription may have
 * more: twenty hanging endpoints at the default per-subscription limit before the others wait.
 */
const MAX_IN_FLIGHT = 1000

/**
 * Pushes messages of webhook subscriptions (API.md "Subscriptions"; RELIABILITY.md R12, R13,
 * S1, S2). Every `refreshMs` it reads the active webhook subscriptions of all tenants and runs
 * one dispatcher for each: created, resumed and edited subscriptions are picked up, paused
 * and deleted ones stop, within about a second. Many workers may run at once: pulls go through
 * the same atomic script as the pull API, so each message is handed to one of them at a time.
 */
export class WebhookDelivery implements Loop {
  readonly name = 'webhook-delivery'
  private readonly dispatchers = new Map<string, Dispatcher>()
  private readonly retiring = new Set<Promise<void>>()
  private readonly shared: Shared & {
    deps: WebhookDeliveryDeps
    options: Required<WebhookDeliveryOptions>
  }
  private running: Promise<void> | undefined
  private stopping = false
  private readonly pauses = new Pause()

  constructor(deps: WebhookDeliveryDeps, options: WebhookDeliveryOptions) {
    const maxInFlight = options.maxInFlight ?? Math.max(MAX_IN_FLIGHT, options.perSubscription)
    this.shared = {
      deps,
      options: { refreshMs: REFRESH_MS, stopDeadlineMs: STOP_DEADLINE_MS, ...options, maxInFlight },
      slots: new Slots(maxInFlight),
    }
  }

  start(): void {
    if (this.running) return
    this.stopping = false
    this.running = this.run()
  }

  /** Wake-up callbacks the dispatchers hold: bounded by their count, whatever the traffic. */
  heldWakers(): number {
    let held = 0
    for (const dispatcher of this.dispatchers.values()) held += dispatcher.heldWakers
    return held
  }

  /**
   * Stops reading, lets requests in flight finish and settle within the stop deadline, then
   * closes the dispatchers' connections.
   */
  async stop(): Promise<void> {
    this.stopping = true
    this.pauses.end()
    await this.running
    this.running = undefined
    for (const [id, dispatcher] of this.dispatchers) this.retire(id, dispatcher)
    await Promise.all(this.retiring)
  }

  private async run(): Promise<void> {
    const { deps, options } = this.shared
    while (!this.stopping) {
      try {
        await this.refresh()
      } catch (err) {
        // Dispatchers keep running on what they know; the next refresh tries again.
        deps.logger.warn({ err: (err as Error).message }, 'webhook subscriptions not refreshed')
      }
      if (this.stopping) break
      await this.pauses.for(options.refreshMs)
    }
  }

  private async refresh(): Promise<void> {
    const { deps } = this.shared
    const active = new Map((await deps.listActiveWebhooks()).map((s) => [s.id, s]))
    if (this.stopping) return
    for (const [id, dispatcher] of this.dispatchers) {
      const sub = active.get(id)
      if (!sub || dispatcher.halted) this.retire(id, dispatcher)
      else dispatcher.update(sub)
    }
    for (const sub of active.values()) {
      if (this.dispatchers.has(sub.id)) continue
      const queue = await deps.consume.queues.get(sub.tenantId, sub.queue)
      // A queue deleted (perhaps recreated under the name) takes its subscriptions with it.
      if (!queue || queue.id !== sub.queueId || this.stopping) continue
      const dispatcher = new Dispatcher(this.shared, sub, queue)
      this.dispatchers.set(sub.id, dispatcher)
      dispatcher.start()
    }
  }

  private retire(id: string, dispatcher: Dispatcher): void {
    this.dispatchers.delete(id)
    const stopped = dispatcher
      .stop(this.shared.options.stopDeadlineMs)
      .catch((err) => this.shared.deps.logger.error({ err }, 'webhook dispatcher did not stop'))
      .finally(() => this.retiring.delete(stopped))
    this.retiring.add(stopped)
  }
}
