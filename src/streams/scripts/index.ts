import type { ClientContext, Result } from 'ioredis'
import type { RedisClient } from '../redis'
import cancelScheduled from './cancelScheduled.lua' with { type: 'text' }
import claimDedupRoutes from './claimDedupRoutes.lua' with { type: 'text' }
import deleteMessage from './deleteMessage.lua' with { type: 'text' }
import forgetConsumers from './forgetConsumers.lua' with { type: 'text' }
import givePermits from './givePermits.lua' with { type: 'text' }
import byId from './includes/byId.lua' with { type: 'text' }
import inflightWrites from './includes/inflightWrites.lua' with { type: 'text' }
import ordering from './includes/ordering.lua' with { type: 'text' }
import tokenBucket from './includes/tokenBucket.lua' with { type: 'text' }
import trimming from './includes/trimming.lua' with { type: 'text' }
import xinfo from './includes/xinfo.lua' with { type: 'text' }
import promoteDue from './promoteDue.lua' with { type: 'text' }
import publishMessages from './publishMessages.lua' with { type: 'text' }
import pull from './pull.lua' with { type: 'text' }
import purge from './purge.lua' with { type: 'text' }
import readLedgerRows from './readLedgerRows.lua' with { type: 'text' }
import registerDelayed from './registerDelayed.lua' with { type: 'text' }
import removeConsumer from './removeConsumer.lua' with { type: 'text' }
import removeEntries from './removeEntries.lua' with { type: 'text' }
import settle from './settle.lua' with { type: 'text' }
import settleDelayed from './settleDelayed.lua' with { type: 'text' }
import takeLedgerGap from './takeLedgerGap.lua' with { type: 'text' }
import takePermits from './takePermits.lua' with { type: 'text' }
import takeToken from './takeToken.lua' with { type: 'text' }
import trim from './trim.lua' with { type: 'text' }

/** Shared Lua, pasted where a script says `-- @include <name>` (BullMQ's convention). */
const INCLUDES: Record<string, string> = {
  byId,
  inflightWrites,
  ordering,
  tokenBucket,
  trimming,
  xinfo,
}

function withIncludes(lua: string): string {
  return lua.replace(/^-- @include (\w+)$/gm, (_, name: string) => {
    const included = INCLUDES[name]
    if (included === undefined) throw new Error(`Lua include '${name}' does not exist`)
    return included
  })
}

/**
 * How many keys a script takes, as its header declares them (`KEYS[n] what`, one line each):
 * undefined when one line declares a run (`KEYS[5..]`, `KEYS[1..n]`), and the caller then
 * passes the count as the first argument.
 */
export function declaredKeys(lua: string): number | undefined {
  const header = lua.slice(0, lua.indexOf(']]'))
  if (/^\s*KEYS\[\d+\.\./m.test(header)) return undefined
  return header.match(/^\s*KEYS\[\d+\]\s/gm)?.length ?? 0
}

function script(text: string) {
  const lua = withIncludes(text)
  const numberOfKeys = declaredKeys(text)
  return numberOfKeys === undefined ? { lua } : { numberOfKeys, lua }
}

/**
 * Every Lua script, by command name (the file name). Imported as text so the compiled binary
 * embeds them; registered with `defineCommand`, which sends EVALSHA and falls back to EVAL
 * after a Redis restart flushed the script cache. Each script's header names its keys, and
 * the reply is decoded in replies.ts.
 */
export const SCRIPTS = {
  cancelScheduled: script(cancelScheduled),
  claimDedupRoutes: script(claimDedupRoutes),
  deleteMessage: script(deleteMessage),
  forgetConsumers: script(forgetConsumers),
  givePermits: script(givePermits),
  publishMessages: script(publishMessages),
  promoteDue: script(promoteDue),
  pull: script(pull),
  purge: script(purge),
  readLedgerRows: script(readLedgerRows),
  registerDelayed: script(registerDelayed),
  removeConsumer: script(removeConsumer),
  removeEntries: script(removeEntries),
  settle: script(settle),
  settleDelayed: script(settleDelayed),
  takeLedgerGap: script(takeLedgerGap),
  takePermits: script(takePermits),
  takeToken: script(takeToken),
  trim: script(trim),
} as const

type Arg = string | number

/** pull.lua and settle.lua take the same keys: stream, in-flight set, ordering heads, parked. */
type ConsumeScript<Context extends ClientContext> = (
  stream: string,
  inflight: string,
  heads: string,
  parked: string,
  ...args: Arg[]
) => Result<unknown[], Context>

declare module 'ioredis' {
  interface RedisCommander<Context> {
    /** cancelScheduled.lua: 1 when the delayed message was removed, else 0. */
    cancelScheduled(
      delayed: string,
      delayedBodies: string,
      messageId: string
    ): Result<number, Context>
    /** deleteMessage.lua: { outcome, stream id, fields } (see replies.ts). */
    deleteMessage(
      stream: string,
      index: string,
      delayed: string,
      delayedBodies: string,
      messageId: string
    ): Result<unknown[], Context>
    /** removeConsumer.lua: deletes a consumer, handing its pending entries to `heir`. */
    removeConsumer(
      stream: string,
      inflight: string,
      group: string,
      consumer: string,
      heir: string,
      now: number
    ): Result<number, Context>
    /** claimDedupRoutes.lua: the partition each client-chosen message id of a queue takes. */
    claimDedupRoutes(numKeys: number, ...keysAndArgs: Arg[]): Result<number[], Context>
    /** forgetConsumers.lua: deletes idle consumers holding nothing; returns how many. */
    forgetConsumers(stream: string, group: string, minIdleMs: number): Result<number, Context>
    /** publishMessages.lua: dedup, capacity check and XADD/ZADD for one partition. */
    publishMessages(numKeys: number, ...keysAndArgs: Arg[]): Result<unknown[], Context>
    /** promoteDue.lua: moves due delayed messages into the stream; returns { promoted, nextDue }. */
    promoteDue(
      stream: string,
      delayed: string,
      delayedBodies: string,
      index: string,
      now: number,
      limit: number
    ): Result<number[], Context>
    /** registerDelayed.lua: notes a partition's due time in the delayed registry. */
    registerDelayed(
      registry: string,
      generations: string,
      clock: string,
      member: string,
      due: number
    ): Result<number, Context>
    /** settleDelayed.lua: updates a registry entry after promotion unless a newer one raced it. */
    settleDelayed(
      registry: string,
      generations: string,
      member: string,
      generation: string,
      nextDue: number
    ): Result<number, Context>
    /** pull.lua: reclaim timed-out deliveries, read new ones, set visibility deadlines. */
    pull: ConsumeScript<Context>
    /** purge.lua: empties one partition; returns the number of messages removed. */
    purge(numKeys: number, ...keys: string[]): Result<number, Context>
    /** readLedgerRows.lua: new entries of a stream as ledger rows; [...ids, rowsJson] or []. */
    readLedgerRows(
      stream: string,
      group: string,
      consumer: string,
      count: number,
      tenantId: string,
      queueId: string,
      partition: number
    ): Result<string[], Context>
    /** removeEntries.lua: deletes entries and their index entries; returns how many. */
    removeEntries(stream: string, index: string, ...ids: string[]): Result<number, Context>
    /** trim.lua: trims acknowledged and expired entries; returns how many. */
    trim(
      stream: string,
      index: string,
      ledgerGap: string,
      retentionBoundMs: number,
      limit: number,
      ledgerFloorMs: number
    ): Result<number, Context>
    /** settle.lua: ack or nack current deliveries. */
    settle: ConsumeScript<Context>
    /** takeLedgerGap.lua: entries trimmed unrecorded since the last call. */
    takeLedgerGap(ledgerGap: string): Result<number, Context>
    /** takeToken.lua: one token from a tenant's bucket; { allowed, remaining, waitMs, fullMs }. */
    takeToken(bucket: string, rate: number, burst: number): Result<number[], Context>
    /** takePermits.lua: a webhook subscription's permits; { granted, waitMs, why }. */
    takePermits(
      leases: string,
      bucket: string,
      pause: string,
      counters: string,
      ...args: Arg[]
    ): Result<number[], Context>
    /** givePermits.lua: ends leases, refunds unused tokens, starts a pause; leases ended. */
    givePermits(
      leases: string,
      bucket: string,
      pause: string,
      counters: string,
      ...args: Arg[]
    ): Result<number, Context>
  }
}

/** Registers every script on a client; call once per connection that runs scripts. */
export function defineScripts(client: RedisClient): void {
  for (const [name, script] of Object.entries(SCRIPTS)) {
    client.defineCommand(name, script)
  }
}
