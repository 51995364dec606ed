import type { Result } from 'ioredis'
import type { RedisClient } from '../redis'
import purge from './purge.lua' with { type: 'text' }

/**
 * Every Lua script, by command name (the file name). Imported as text so the compiled binary
 * embeds them; registered with `defineCommand`, which sends EVALSHA and falls back to EVAL
 * after a Redis restart flushed the script cache.
 */
export const SCRIPTS = {
  purge: { numberOfKeys: 3, lua: purge },
} as const

declare module 'ioredis' {
  interface RedisCommander<Context> {
    /** purge.lua: empties one partition; returns the number of messages removed. */
    purge(stream: string, delayed: string, delayedBodies: string): Result<number, Context>
  }
}

/** Registers every script on a client; call once per connection that runs scripts. */
export function defineScripts(client: RedisClient): void {
  for (const [name, script] of Object.entries(SCRIPTS)) {
    client.defineCommand(name, script)
  }
}
