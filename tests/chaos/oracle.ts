import { expect } from 'bun:test'

/**
 * The queue oracle of RELIABILITY.md 3.1, after Jepsen's `total-queue` checker: what goes in
 * must come out, provided the history ends by draining the queues completely.
 *
 * Producers record every publish as `ok`, `fail` (definitely not stored, e.g. 429) or
 * `unknown` (a timeout, a reset connection or a 5xx: the write may have happened). Consumers
 * and webhook sinks record every delivery. After the faults stop and everything is drained,
 * {@link History.check} classifies:
 * - lost = ok − delivered − dead-lettered
 * - unexpected = delivered − (ok ∪ unknown): delivered but never acknowledged as stored
 * - duplicated = delivered more than once
 * - recovered = unknown ∩ delivered
 * A run is valid only with lost = 0 and unexpected = 0.
 */

export type PublishResult = 'ok' | 'fail' | 'unknown'

/** One message handed to a consumer or a webhook sink. */
export interface DeliveryRecord {
  messageId: string
  deliveryCount: number
  consumer: string
  /** When it arrived, ms since the epoch. */
  ts: number
  /** Whether the payload was the one published for this id (a nil-field entry is not). */
  intact: boolean
}

interface PublishRecord {
  tenant: string
  queue: string
  result: PublishResult
  attempts: number
  /** Attempts that got no answer or a 5xx. */
  uncertain: number
}

/** The figures of one run, printed by every chaos test. */
export interface Figures {
  published: number
  ok: number
  fail: number
  unknown: number
  /** Messages with an attempt of unknown outcome that a retry then settled. */
  retried: number
  delivered: number
  deliveries: number
  deadLettered: number
  lost: number
  unexpected: number
  duplicated: number
  recovered: number
  /** Deliveries whose payload did not belong to their message id (nil fields, mix-ups). */
  corrupt: number
  /** A few lost and unexpected ids, to start an investigation from. */
  sample: { lost: string[]; unexpected: string[] }
}

/** Attempts fold into one result per message: ok beats unknown, unknown beats fail. */
const RANK: Record<PublishResult, number> = { fail: 0, unknown: 1, ok: 2 }

/** The history of one run: every publish attempt and every delivery. */
export class History {
  readonly publishes = new Map<string, PublishRecord>()
  readonly deliveries: DeliveryRecord[] = []
  /** Message ids found in dead-letter queues, with how often each was found. */
  readonly deadLetters = new Map<string, number>()

  /** Records one attempt to publish `messageId`. */
  attempt(messageId: string, tenant: string, queue: string, result: PublishResult): void {
    const record = this.publishes.get(messageId)
    if (!record) {
      this.publishes.set(messageId, {
        tenant,
        queue,
        result,
        attempts: 1,
        uncertain: result === 'unknown' ? 1 : 0,
      })
      return
    }
    record.attempts++
    if (result === 'unknown') record.uncertain++
    if (RANK[result] > RANK[record.result]) record.result = result
  }

  deliver(record: DeliveryRecord): void {
    this.deliveries.push(record)
  }

  deadLetter(messageId: string): void {
    this.deadLetters.set(messageId, (this.deadLetters.get(messageId) ?? 0) + 1)
  }

  /** Deliveries per message id, in arrival order. */
  byMessage(): Map<string, DeliveryRecord[]> {
    const out = new Map<string, DeliveryRecord[]>()
    for (const d of this.deliveries) {
      const list = out.get(d.messageId) ?? []
      list.push(d)
      out.set(d.messageId, list)
    }
    return out
  }

  /** Ids published with `result`. */
  ids(result: PublishResult): Set<string> {
    const out = new Set<string>()
    for (const [id, r] of this.publishes) if (r.result === result) out.add(id)
    return out
  }

  /** Classifies the history; call it after the drain. */
  check(): Figures {
    const ok = this.ids('ok')
    const unknown = this.ids('unknown')
    const byMessage = this.byMessage()
    const delivered = new Set(byMessage.keys())
    const lost = [...ok].filter((id) => !delivered.has(id) && !this.deadLetters.has(id))
    const unexpected = [...delivered, ...this.deadLetters.keys()].filter(
      (id) => !ok.has(id) && !unknown.has(id)
    )
    return {
      published: this.publishes.size,
      ok: ok.size,
      fail: this.ids('fail').size,
      unknown: unknown.size,
      retried: [...this.publishes.values()].filter((r) => r.uncertain > 0 && r.result !== 'unknown')
        .length,
      delivered: delivered.size,
      deliveries: this.deliveries.length,
      deadLettered: this.deadLetters.size,
      lost: lost.length,
      unexpected: new Set(unexpected).size,
      duplicated: [...byMessage.values()].filter((list) => list.length > 1).length,
      recovered: [...unknown].filter((id) => delivered.has(id) || this.deadLetters.has(id)).length,
      corrupt: this.deliveries.filter((d) => !d.intact).length,
      sample: { lost: lost.slice(0, 5), unexpected: [...new Set(unexpected)].slice(0, 5) },
    }
  }
}

/**
 * What every run must show: nothing acknowledged went missing, nothing arrived that was
 * never stored, and no delivery carried another message's payload (or none).
 */
export function expectValid(figures: Figures): void {
  expect({ lost: figures.lost, unexpected: figures.unexpected, corrupt: figures.corrupt }).toEqual({
    lost: 0,
    unexpected: 0,
    corrupt: 0,
  })
}

const table: Array<{ name: string; figures: Record<string, unknown> }> = []

/**
 * Prints one case's figures as a line of JSON, and keeps them for the table that
 * tests/chaos/setup.ts prints after the last test (one table for the whole chaos run).
 */
export function report(name: string, figures: Record<string, unknown>): void {
  const { sample, ...rest } = figures as { sample?: Figures['sample'] }
  const shown = sample && (sample.lost.length > 0 || sample.unexpected.length > 0) ? figures : rest
  console.log(`[chaos] ${name} ${JSON.stringify(shown)}`)
  table.push({ name, figures: rest })
}

/** Prints every case reported so far, one line each. */
export function printTable(): void {
  if (table.length === 0) return
  const lines = ['', 'chaos figures:']
  const width = Math.max(...table.map((t) => t.name.length))
  for (const { name, figures } of table) {
    const cells = Object.entries(figures).map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    lines.push(`  ${name.padEnd(width)}  ${cells.join(' ')}`)
  }
  console.log(lines.join('\n'))
}
