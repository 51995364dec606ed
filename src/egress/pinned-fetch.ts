import ipaddr from 'ipaddr.js'
import type { WebhookTarget } from './ssrf'

/** What opens the connection: Bun's `fetch` in production, a recording wrapper in tests. */
export type Connector = (url: string, init: BunFetchRequestInit) => Promise<Response>

/**
 * Sends a request to a validated target's address rather than its name, so a resolver that
 * answers differently now (DNS rebinding) cannot redirect it. Bun's `fetch` ignores a custom
 * `lookup`, so the URL names the IP literal; the `Host` header carries the name for virtual
 * hosting, and for https `tls.serverName` sets SNI and the name the certificate must match
 * (checked on Bun 1.4.5: without it Bun verifies against the IP and fails). Redirects are never
 * followed (a 3xx comes back as the answer) and proxy variables are ignored, so the socket
 * goes to `target.address` and nowhere else.
 * @returns the endpoint's answer; its body is the caller's to read or cancel.
 */
export function pinnedFetch(
  target: WebhookTarget,
  init: Omit<BunFetchRequestInit, 'redirect' | 'proxy' | 'tls'>,
  connect: Connector = fetch
): Promise<Response> {
  const { url, address, family } = target
  const dial = new URL(url)
  dial.hostname = family === 6 ? `[${address}]` : address
  const headers = new Headers(init.headers)
  headers.set('host', url.host)
  const name = url.hostname.replace(/^\[|\]$/g, '')
  // SNI may not carry an IP; a literal-IP URL is verified against the IP, as usual.
  const tls = url.protocol === 'https:' && !ipaddr.isValid(name) ? { serverName: name } : undefined
  return connect(dial.href, { ...init, headers, redirect: 'manual', proxy: false, tls })
}
