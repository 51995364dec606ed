import { reaper } from './processes'

/** One request a webhook receiver got. */
export interface Hit {
  at: number
  /** When the sender gave up on the request (its connection closed), if it did. */
  abortedAt?: number
  headers: Record<string, string>
  body: string
}

/**
 * A loopback HTTP endpoint for webhook tests: records every request and answers with
 * `answer(n, hit)` (n counts from 1). Stopped at cleanup.
 */
export function receiver(
  answer: (n: number, hit: Hit) => Response | Promise<Response> = () => new Response('ok')
) {
  const hits: Hit[] = []
  const server = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    // Longer than any handler here sleeps, so Bun does not cut a slow answer short.
    idleTimeout: 60,
    fetch: async (req) => {
      const hit: Hit = {
        at: Date.now(),
        headers: Object.fromEntries(req.headers),
        body: await req.text(),
      }
      req.signal.addEventListener('abort', () => {
        hit.abortedAt = Date.now()
      })
      hits.push(hit)
      return answer(hits.length, hit)
    },
  })
  reaper.onCleanup(async () => {
    void server.stop(true)
  })
  return { url: `http://127.0.0.1:${server.port}/hook`, hits }
}
