import type { Result } from 'ioredis'
import type { RedisClient } from '../redis'
import cancelScheduled from './cancelScheduled.lua' with { type: 'text' }
import publishMessages from './publishMessages.lua' with { type: 'text' }
import pull from './pull.lua' with { type: 'text' }
import purge from './purge.lua' with { type: 'text' }
import removeEntries from './removeEntries.lua' with { type: 'text' }
import settle from './settle.lua' with { type: 'text' }

/**
 * Every Lua script, by command name (the file name). Imported as text so the compiled binary
 * embeds them; registered with `defineCommand`, which sends EVALSHA and falls back to EVAL
 * after a Redis restart flushed the script cache. A script without `numberOfKeys` takes the
 * key count as its first argument.
 */
export const SCRIPTS = {
  cancelScheduled: { numberOfKeys: 2, lua: cancelScheduled },
  publishMessages: { lua: publishMessages },
  pull: { numberOfKeys: 2, lua: pull },
  purge: { numberOfKeys: 4, lua: purge },
  removeEntries: { numberOfKeys: 2, lua: removeEntries },
  settle: { numberOfKeys: 2, lua: settle },
} as const

type Arg = string | number

declare module 'ioredis' {
  interface RedisCommander<Context> {
    /** cancelScheduled.lua: 1 when the delayed message was removed, else 0. */
    cancelScheduled(
      delayed: string,
      delayedBodies: string,
      messageId: string
    ): Result<number, Context>
    /** publishMessages.lua: dedup, capacity check and XADD/ZADD for one partition. */
    publishMessages(numKeys: number, ...keysAndArgs: Arg[]): Result<unknown[], Context>
    /** pull.lua: reclaim timed-out deliveries, read new ones, set visibility deadlines. */
    pull(stream: string, inflight: string, ...args: Arg[]): Result<unknown[], Context>
    /** purge.lua: empties one partition; returns the number of messages removed. */
    purge(
      stream: string,
      delayed: string,
      delayedBodies: string,
      index: string
    ): Result<number, Context>
    /** removeEntries.lua: deletes entries and their index entries; returns how many. */
    removeEntries(stream: string, index: string, ...ids: string[]): Result<number, Context>
    /** settle.lua: ack or nack current deliveries. */
    settle(stream: string, inflight: string, ...args: Arg[]): Result<unknown[], Context>
  }
}

/** Registers every script on a client; call once per connection that runs scripts. */
export function defineScripts(client: RedisClient): void {
  for (const [name, script] of Object.entries(SCRIPTS)) {
    client.defineCommand(name, script)
  }
}
