import { lookup } from 'node:dns/promises'
import ipaddr from 'ipaddr.js'

/** One address a host name resolves to, as `dns.lookup(host, { all: true })` gives them. */
export interface ResolvedAddress {
  address: string
  family: number
}

/** Resolves a host name to every address it has; injectable so tests never ask real DNS. */
export type HostResolver = (host: string) => Promise<ResolvedAddress[]>

/** The operating system's resolver (`/etc/hosts`, then DNS), every address at once. */
export const systemResolver: HostResolver = (host) => lookup(host, { all: true, order: 'verbatim' })

/** A webhook URL that passed the guard, and the one address to connect to for it. */
export interface WebhookTarget {
  url: URL
  /** The validated IP (no brackets); the request goes here and nowhere else. */
  address: string
  family: 4 | 6
}

/** A URL the service will not call, with the reason in words fit for an API error. */
export class UnsafeWebhookUrlError extends Error {
  /**
   * @param message what the tenant is told: for a host, only that it is not allowed, since how
   *   a name resolved (or that it did not) would let a tenant map the internal DNS.
   * @param detail why, for the service's own logs.
   */
  constructor(
    message: string,
    readonly detail = message
  ) {
    super(message)
    this.name = 'UnsafeWebhookUrlError'
  }
}

/** A refusal of a URL's host that names nothing but the host the caller gave. */
const hostRefused = (host: string, detail: string) =>
  new UnsafeWebhookUrlError(`host '${host}' is not an allowed webhook target`, detail)

/** A resolver that does not answer within this long counts as failing, not as hanging a request. */
const RESOLVE_TIMEOUT_MS = 5000

/**
 * Why `address` may not be connected to (the address and its kind, e.g. `10.0.0.1 (private)`),
 * or null for a public unicast address. Default-deny:
 * anything ipaddr.js does not call plain `unicast` is refused (loopback, private, CGNAT,
 * link-local and metadata, ULA, multicast, broadcast, benchmarking, documentation, NAT64,
 * 6to4, Teredo, reserved), and so is a string that is no IP at all. IPv4-mapped addresses are
 * judged as the IPv4 address they carry; the deprecated IPv4-compatible `::a.b.c.d` forms
 * (which ipaddr.js calls unicast) are refused outright.
 */
export function addressRefusal(address: string): string | null {
  if (!ipaddr.isValid(address)) return `'${address}' (not an IP address)`
  let ip = ipaddr.parse(address)
  if (ip.kind() === 'ipv6') {
    const v6 = ip as ipaddr.IPv6
    if (v6.isIPv4MappedAddress()) ip = v6.toIPv4Address()
    else if (v6.parts.slice(0, 6).every((p) => p === 0)) {
      return `${address} (IPv4-compatible IPv6)`
    }
  }
  const range = ip.range()
  return range === 'unicast' ? null : `${address} (${range})`
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/**
 * Decides where a webhook may go (RELIABILITY.md "SSRF"): http(s) without userinfo, to a host
 * every resolved address of which is public, unless the host is listed in
 * `WEBHOOK_ALLOWED_HOSTS`. Literal IPs in any spelling (decimal `2130706433`, octal
 * `0177.0.0.1`, hex `0x7f.1`, short `127.1`, bracketed IPv6) reach here already normalised by
 * the WHATWG URL parser, and are judged without asking the resolver.
 */
export class WebhookUrlGuard {
  private readonly allowed: ReadonlySet<string>

  /**
   * @param allowedHosts exact host names or IPs (as a URL's hostname, IPv6 without brackets)
   * whose addresses are not checked.
   * @param resolveTimeoutMs how long a lookup may take before it counts as failed.
   */
  constructor(
    allowedHosts: readonly string[],
    private readonly resolve: HostResolver = systemResolver,
    private readonly resolveTimeoutMs = RESOLVE_TIMEOUT_MS
  ) {
    this.allowed = new Set(allowedHosts.map((h) => h.toLowerCase().replace(/^\[|\]$/g, '')))
  }

  /**
   * Validates `raw` and resolves its host. Every address must be acceptable, not just the one
   * used: a name that resolves to a public and a private address is refused, since a later
   * connection (or a rebinding resolver) could pick the private one.
   * @returns the URL and the address to connect to.
   * @throws UnsafeWebhookUrlError naming the reason.
   */
  async check(raw: string): Promise<WebhookTarget> {
    if (!URL.canParse(raw)) throw new UnsafeWebhookUrlError('not a valid URL')
    const url = new URL(raw)
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new UnsafeWebhookUrlError('only http and https URLs may be called')
    }
    if (url.username || url.password) {
      throw new UnsafeWebhookUrlError('a URL with user info (user:password@) is not allowed')
    }
    const host = url.hostname.replace(/^\[|\]$/g, '')
    const allowed = this.allowed.has(host)
    const literal = ipaddr.isValid(host)
    const addresses: ResolvedAddress[] = literal
      ? [{ address: host, family: ipaddr.parse(host).kind() === 'ipv6' ? 6 : 4 }]
      : await this.lookup(host)
    if (addresses.length === 0) throw hostRefused(host, 'no address')
    for (const { address } of addresses) {
      const refusal = addressRefusal(address)
      // An allowed host may resolve anywhere, but only to something that is an IP.
      if (!refusal || (allowed && ipaddr.isValid(address))) continue
      throw hostRefused(host, `${literal ? 'is' : 'resolves to'} ${refusal}, not a public address`)
    }
    const [first] = addresses
    const mapped = ipaddr.parse(first!.address)
    // Connect to what the check judged: a mapped IPv6 address is dialled as its IPv4 form.
    const ip =
      mapped.kind() === 'ipv6' && (mapped as ipaddr.IPv6).isIPv4MappedAddress()
        ? (mapped as ipaddr.IPv6).toIPv4Address()
        : mapped
    return { url, address: ip.toString(), family: ip.kind() === 'ipv6' ? 6 : 4 }
  }

  /**
   * {@link check} for callers that only need a verdict (subscription create and update).
   * @returns why the URL may not be called, or null when it may.
   */
  async refusal(raw: string): Promise<string | null> {
    try {
      await this.check(raw)
      return null
    } catch (err) {
      if (err instanceof UnsafeWebhookUrlError) return err.message
      throw err
    }
  }

  private async lookup(host: string): Promise<ResolvedAddress[]> {
    try {
      return await withTimeout(
        this.resolve(host),
        this.resolveTimeoutMs,
        `resolving took over ${this.resolveTimeoutMs} ms`
      )
    } catch (err) {
      throw hostRefused(host, `could not be resolved (${(err as Error).message})`)
    }
  }
}
