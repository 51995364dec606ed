import { Hono } from 'hono'
import type { PublishAuth } from './auth'

/** A peer's routes and what to close when it stops. */
export interface Peer {
  app: Hono
  close(): void
}

/** A variable the peer cannot run without. */
export function requiredEnv(name: string): string {
  const value = process.env[name]
  if (!value) throw new Error(`${name} is required`)
  return value
}

/** Serves a peer on loopback at PORT and stops it on SIGTERM, as the harness stops every child. */
export function servePeer(peer: Peer): void {
  const server = Bun.serve({
    hostname: '127.0.0.1',
    port: Number(process.env.PORT ?? 0),
    fetch: peer.app.fetch,
  })
  process.on('SIGTERM', () => {
    void server.stop(true)
    peer.close()
    process.exit(0)
  })
}

/** A peer's app: `/health`, and `auth`'s checks in front of both publish routes when given. */
export function peerApp(auth?: PublishAuth): Hono {
  const app = new Hono()
  app.get('/health', (c) => c.text('ok'))
  if (auth) {
    app.use('/publish', auth.single)
    app.use('/publish/batch', auth.batch)
  }
  return app
}
