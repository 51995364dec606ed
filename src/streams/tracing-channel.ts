import diagnosticsChannel from 'node:diagnostics_channel'

/**
 * Bun's `TracingChannel` lacks Node's `hasSubscribers` getter (oven-sh/bun#27805, open as
 * of Bun 1.4.5). ioredis traces a command unless that getter says `false`, so under Bun it
 * traced every one with no subscriber to see it: a copy of the arguments as strings, a
 * context object and a wrapping promise per command (the ledger's XACK of a thousand ids
 * made a thousand strings). This adds the getter as Node defines it, true when any of the
 * five event channels has a subscriber, so a tracer that subscribes still gets every event.
 * Does nothing where the runtime has the getter.
 */
export function ensureTracingChannelHasSubscribers(): void {
  const prototype = Object.getPrototypeOf(diagnosticsChannel.tracingChannel('mq:probe'))
  if ('hasSubscribers' in prototype) return
  Object.defineProperty(prototype, 'hasSubscribers', {
    configurable: true,
    get(this: Record<string, diagnosticsChannel.Channel>) {
      return ['start', 'end', 'asyncStart', 'asyncEnd', 'error'].some(
        (event) => this[event]?.hasSubscribers === true
      )
    },
  })
}
