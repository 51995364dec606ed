import { afterEach, describe, expect, test } from 'bun:test'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Connector, pinnedFetch } from '../../../src/egress/pinned-fetch'
import { WebhookUrlGuard } from '../../../src/egress/ssrf'

const HOST = 'hooks.example.test'

/** A stub resolver for one name; it may answer differently per call (rebinding). */
function resolverFor(...answers: string[][]) {
  let call = 0
  return async (host: string) => {
    if (host !== HOST) throw new Error(`getaddrinfo ENOTFOUND ${host}`)
    const answer = answers[Math.min(call++, answers.length - 1)]!
    return answer.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }))
  }
}

/** Records every connection and refuses anything but loopback, so no test dials out. */
function recordingConnector(extra: Partial<BunFetchRequestInit> = {}) {
  const dialled: string[] = []
  const connect: Connector = (url, init) => {
    dialled.push(url)
    const host = new URL(url).hostname
    if (host !== '127.0.0.1' && host !== '[::1]') throw new Error(`test would dial ${host}`)
    return fetch(url, { ...init, ...extra, tls: { ...init.tls, ...extra.tls } })
  }
  return { connect, dialled }
}

const servers: Array<{ stop(force?: boolean): unknown }> = []
afterEach(() => {
  for (const s of servers.splice(0)) s.stop(true)
})

describe('pinned fetch', () => {
  test('http: the socket goes to the validated IP, the name travels in Host', async () => {
    const seen: Array<{ host: string | null; url: string }> = []
    const server = Bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      fetch: (req) => {
        seen.push({ host: req.headers.get('host'), url: req.url })
        return new Response('ok')
      },
    })
    servers.push(server)
    // The name answers loopback when checked and a private address afterwards: the request
    // still goes to the address that was checked.
    const guard = new WebhookUrlGuard([HOST], resolverFor(['127.0.0.1'], ['10.0.0.1']))
    const target = await guard.check(`http://${HOST}:${server.port}/hook?a=1`)
    const { connect, dialled } = recordingConnector()
    const res = await pinnedFetch(target, { method: 'POST', body: '{}' }, connect)
    expect(res.status).toBe(200)
    expect(dialled).toEqual([`http://127.0.0.1:${server.port}/hook?a=1`])
    expect(seen).toEqual([
      { host: `${HOST}:${server.port}`, url: `http://${HOST}:${server.port}/hook?a=1` },
    ])
  })

  test('redirects come back as answers; Location is never fetched', async () => {
    let followed = 0
    const other = Bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      fetch: () => {
        followed++
        return new Response('no')
      },
    })
    const server = Bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      fetch: () => Response.redirect(`http://127.0.0.1:${other.port}/private`, 307),
    })
    servers.push(server, other)
    const target = await new WebhookUrlGuard(['127.0.0.1']).check(
      `http://127.0.0.1:${server.port}/`
    )
    const { connect, dialled } = recordingConnector()
    const res = await pinnedFetch(target, { method: 'POST', body: '{}' }, connect)
    expect(res.status).toBe(307)
    expect(dialled).toHaveLength(1)
    expect(followed).toBe(0)
  })

  test.skipIf(!Bun.which('openssl'))(
    'https: SNI and certificate checks use the name while the socket goes to the IP',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'mq-tls-'))
      try {
        const made = Bun.spawnSync(
          [
            'openssl',
            'req',
            '-x509',
            '-newkey',
            'rsa:2048',
            '-nodes',
            '-keyout',
            join(dir, 'key.pem'),
            '-out',
            join(dir, 'cert.pem'),
            '-days',
            '1',
            '-subj',
            `/CN=${HOST}`,
            '-addext',
            `subjectAltName=DNS:${HOST}`,
          ],
          { stderr: 'ignore' }
        )
        expect(made.exitCode).toBe(0)
        const cert = readFileSync(join(dir, 'cert.pem'), 'utf8')
        const key = readFileSync(join(dir, 'key.pem'), 'utf8')
        const server = Bun.serve({
          hostname: '127.0.0.1',
          port: 0,
          tls: { cert, key },
          fetch: (req) => new Response(req.headers.get('host')),
        })
        servers.push(server)
        // The test's own CA is trusted; the name the certificate must carry is still checked.
        const { connect, dialled } = recordingConnector({ tls: { ca: cert } })
        const guard = new WebhookUrlGuard([HOST, 'other.example.test'], async () => [
          { address: '127.0.0.1', family: 4 },
        ])
        const target = await guard.check(`https://${HOST}:${server.port}/`)
        const res = await pinnedFetch(target, { method: 'POST', body: '{}' }, connect)
        expect(await res.text()).toBe(`${HOST}:${server.port}`)
        expect(dialled).toEqual([`https://127.0.0.1:${server.port}/`])

        // A name the certificate does not carry fails verification at the same address.
        const wrong = await guard.check(`https://other.example.test:${server.port}/`)
        await expect(pinnedFetch(wrong, { method: 'POST', body: '{}' }, connect)).rejects.toThrow(
          /ALTNAME/
        )
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    }
  )
})
