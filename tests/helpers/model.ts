import fc from 'fast-check'
import type { Deps } from '../../src/deps'
import { ackMessages, nackMessages } from '../../src/domain/consume'
import type { DomainContext } from '../../src/domain/context'
import { MqError } from '../../src/domain/errors'
import { createQueue } from '../../src/domain/queues'
import { newTenant, sharedDeps } from './harness'

/** What the model tests of consumer groups share (group-model, ordering-model). */

export function check(cond: unknown, what: string): asserts cond {
  if (!cond) throw new Error(`model violated: ${what}`)
}

/**
 * Acks or nacks one receipt through the domain verbs. @returns for an ack how many it
 * acknowledged, for a nack requeued + 2 × dead-lettered, or 'gone' when the subscription was
 * deleted.
 */
export async function settleReceipt(
  r: { deps: Deps; ctx: DomainContext },
  mode: 'ack' | 'nack',
  subscriptionId: string,
  receipt: string,
  delayMs: number
): Promise<number | 'gone'> {
  try {
    if (mode === 'ack') {
      return await ackMessages(r.deps.consumeDeps, r.ctx, subscriptionId, [receipt])
    }
    const res = await nackMessages(r.deps.consumeDeps, r.ctx, subscriptionId, [receipt], {
      delayMs,
    })
    return res.requeued + 2 * res.deadLettered
  } catch (err) {
    if (!(err instanceof MqError && err.code === 'MQ_SUBSCRIPTION_NOT_FOUND')) throw err
    return 'gone'
  }
}

/** Lets time pass: visibility timeouts and nack delays run out. */
export class Wait<M extends object, R> implements fc.AsyncCommand<M, R> {
  constructor(readonly ms: number) {}
  check = () => true
  async run() {
    await Bun.sleep(this.ms)
  }
  toString = () => `Wait(${this.ms})`
}

/** A receipt a model handed out: whose, of what, with which delivery count. */
export interface ModelReceipt {
  receipt: string
  subscriptionId: string
  messageId: string
  count: number
}

/**
 * Acks or nacks the `pick`-th receipt ever handed out (modulo how many there are); `run`
 * settles it with {@link settleAs} and updates the model.
 */
export abstract class SettleCommand<M extends { receipts: ModelReceipt[] }, R>
  implements fc.AsyncCommand<M, R>
{
  constructor(
    readonly mode: 'ack' | 'nack',
    readonly pick: number,
    readonly delayMs: number
  ) {}
  check = (m: Readonly<M>) => m.receipts.length > 0
  abstract run(m: M, r: R): Promise<void>
  toString = () => `Settle(${this.mode}, ${this.pick}, ${this.delayMs})`

  /**
   * Settles `rc`: through a deleted subscription it must be 'gone', a stale receipt must settle
   * nothing (both checked here, then null); else @returns what {@link settleReceipt} did.
   */
  protected async settleAs(
    r: { deps: Deps; ctx: DomainContext },
    rc: ModelReceipt,
    state: { alive: boolean; current: boolean }
  ): Promise<number | null> {
    const outcome = await settleReceipt(r, this.mode, rc.subscriptionId, rc.receipt, this.delayMs)
    const what = `${this.mode} of ${rc.messageId} #${rc.count}`
    if (!state.alive) check(outcome === 'gone', `${what} through a deleted subscription`)
    else if (!state.current) check(outcome === 0, `${what}: a stale receipt settled (${outcome})`)
    else return outcome as number
    return null
  }
}

/**
 * A model test's runner: `cmds` on a fresh model and service from `setup`, then `finish` (a
 * drain and its final checks).
 */
export function modelRunner<M extends object, R>(
  setup: () => Promise<{ model: M; real: R }>,
  finish: (m: M, r: R) => Promise<void>
) {
  return async (cmds: Iterable<fc.AsyncCommand<M, R>>) => {
    const { model, real } = await setup()
    await fc.asyncModelRun(() => ({ model, real }), cmds)
    await finish(model, real)
  }
}

/** The property: random command sequences, `MODEL_RUNS` of them (default `runs`). */
export function assertModel<M extends object, R>(
  commands: Array<fc.Arbitrary<fc.AsyncCommand<M, R>>>,
  run: (cmds: Iterable<fc.AsyncCommand<M, R>>) => Promise<void>,
  opts: { maxCommands: number; runs: number }
) {
  return fc.assert(
    fc.asyncProperty(fc.commands(commands, { maxCommands: opts.maxCommands, size: '+1' }), run),
    { numRuns: Number(process.env.MODEL_RUNS ?? opts.runs), endOnFailure: true }
  )
}

/** The real side of a model test: a new tenant with queue `orders` of `partitionCount`. */
export async function modelService(partitionCount: number, requestId: string) {
  const deps = await sharedDeps()
  const tenant = newTenant()
  const ctx: DomainContext = {
    tenantId: tenant,
    principal: { kind: 'user', name: 'model' },
    requestId,
  }
  await createQueue(deps.queueDeps, ctx, { name: 'orders', partitionCount })
  return { deps, ctx, tenant }
}
