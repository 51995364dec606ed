import { describe, expect, test } from 'bun:test'
import { addressRefusal, UnsafeWebhookUrlError, WebhookUrlGuard } from '../../src/egress/ssrf'
import { ALL_BLOCKED_URLS, BLOCKED_URLS, PUBLIC_IP, ssrfResolver } from '../helpers/ssrf-vectors'

/** Why `guard` refused `url`, as the service's logs get it (the caller gets less). */
async function detail(guard: WebhookUrlGuard, url: string): Promise<string> {
  const err = await guard.check(url).then(
    () => null,
    (e) => e
  )
  if (!(err instanceof UnsafeWebhookUrlError)) throw new Error(`${url} was not refused`)
  return err.detail
}

describe('webhook URL guard', () => {
  test('regression: a refusal tells the caller only that the host is not allowed', async () => {
    const guard = new WebhookUrlGuard([], ssrfResolver())
    // Each of these once echoed how the name resolved, or that it did not.
    for (const host of ['localhost', 'rebind.example.test', 'sub.localhost']) {
      await guard.refusal(`http://${host}/`)
      expect(await guard.refusal(`http://${host}/`)).toBe(
        `host '${host}' is not an allowed webhook target`
      )
    }
    expect(await detail(guard, 'http://localhost/')).toContain('127.0.0.1')
  })

  test('has at least 60 vectors', () => {
    expect(ALL_BLOCKED_URLS.length).toBeGreaterThanOrEqual(60)
  })

  for (const [kind, urls] of Object.entries(BLOCKED_URLS)) {
    test(`refuses ${kind}`, async () => {
      const guard = new WebhookUrlGuard([], ssrfResolver())
      for (const url of urls) {
        const refused = await guard.check(url).then(
          (target) => `accepted as ${target.address}`,
          (err) => err
        )
        if (!(refused instanceof UnsafeWebhookUrlError)) throw new Error(`${url}: ${refused}`)
        expect(await guard.refusal(url)).toBe(refused.message)
        expect(refused.message).not.toMatch(/resolve|address|loopback|private|linkLocal/)
      }
    })
  }

  test('literal IPs are judged without asking the resolver', async () => {
    const resolver = ssrfResolver()
    const guard = new WebhookUrlGuard([], resolver)
    for (const url of BLOCKED_URLS['loopback, in every spelling']!) await guard.refusal(url)
    expect(resolver.lookups).toEqual([])
  })

  test('public addresses pass, and the address to connect to is the one checked', async () => {
    const guard = new WebhookUrlGuard([], ssrfResolver())
    expect(await guard.check('https://public.example.test/hook?x=1')).toMatchObject({
      address: PUBLIC_IP,
      family: 4,
    })
    expect(await guard.check('http://public6.example.test:8443/')).toMatchObject({
      address: '2606:4700:4700::1111',
      family: 6,
    })
    expect(await guard.check(`http://[::ffff:${PUBLIC_IP}]/`)).toMatchObject({
      address: PUBLIC_IP,
      family: 4,
    })
    expect(await guard.check('http://8.8.8.8/')).toMatchObject({ address: '8.8.8.8' })
    expect(await guard.refusal('https://public.example.test/')).toBeNull()
  })

  test('a rebinding name is refused the moment it answers private', async () => {
    const guard = new WebhookUrlGuard([], ssrfResolver())
    expect(await guard.refusal('http://rebind.example.test/')).toBeNull()
    expect(await detail(guard, 'http://rebind.example.test/')).toContain('10.0.0.1')
  })

  test('WEBHOOK_ALLOWED_HOSTS: exact host names and IPs skip the address check', async () => {
    const resolver = ssrfResolver()
    const guard = new WebhookUrlGuard(['localhost', '127.0.0.1', '[::1]'], resolver)
    expect(await guard.check('http://localhost:3000/hook')).toMatchObject({
      address: '127.0.0.1',
    })
    expect(await guard.check('http://127.0.0.1:3000/')).toMatchObject({ address: '127.0.0.1' })
    expect(await guard.check('http://[::1]:3000/')).toMatchObject({ address: '::1', family: 6 })
    // Exact match only: neither another spelling nor a subdomain is allowed.
    expect(await detail(guard, 'http://localhost.:3000/')).toContain('loopback')
    expect(await detail(guard, 'http://127.0.0.2/')).toContain('loopback')
    expect(await detail(guard, 'http://sub.localhost/')).toContain('could not be resolved')
    // Another spelling of an allowed IP is the same host once the URL parser normalised it.
    expect(await guard.check('http://2130706433/')).toMatchObject({ address: '127.0.0.1' })
    const garbled = new WebhookUrlGuard(['odd.example.test'], async () => [
      { address: 'not-an-ip', family: 4 },
    ])
    expect(await detail(garbled, 'http://odd.example.test/')).toContain('not an IP')
    // Allowed hosts still need http(s) and no user info.
    expect(await guard.refusal('ftp://localhost/')).toContain('http')
    expect(await guard.refusal('http://a:b@localhost/')).toContain('user info')
  })

  test('a resolver that hangs is a refusal, not a hung request', async () => {
    const guard = new WebhookUrlGuard([], () => new Promise(() => {}), 200)
    const started = Date.now()
    expect(await detail(guard, 'http://slow.example.test/')).toContain('took over 200 ms')
    expect(Date.now() - started).toBeLessThan(1000)
  })

  test('addressRefusal names the range', () => {
    expect(addressRefusal('127.0.0.1')).toContain('loopback')
    expect(addressRefusal('100.64.0.1')).toContain('carrierGradeNat')
    expect(addressRefusal('::ffff:192.168.0.1')).toContain('private')
    expect(addressRefusal('not-an-ip')).toContain('not an IP')
    expect(addressRefusal(PUBLIC_IP)).toBeNull()
  })
})
