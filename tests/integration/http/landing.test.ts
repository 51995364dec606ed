import { describe, expect, test } from 'bun:test'
import { binaryCommand, startLine } from '../../../src/cli/usage'
import { testApp } from '../../helpers/harness'

// Issue 24: a newcomer opening the address in a browser, or typing a path with a slash, lands
// on a page instead of a 404 JSON error.
describe('landing pages', () => {
  test('GET / redirects to the console, which answers', async () => {
    const app = await testApp()
    const res = await app.request('/')
    expect(res.status).toBe(302)
    expect(res.headers.get('location')).toBe('/console')
    expect((await app.request('/console')).status).toBe(200)
  })

  test('GET /docs/ redirects to /docs, and /console/ is the console page', async () => {
    const app = await testApp()
    const docs = await app.request('/docs/')
    expect(docs.status).toBe(302)
    expect(docs.headers.get('location')).toBe('/docs')
    expect((await app.request('/docs')).headers.get('content-type')).toContain('text/html')
    const consolePage = await app.request('/console/')
    expect(consolePage.status).toBe(200)
    expect(await consolePage.text()).toContain('/console/app.js')
  })

  test('other unknown paths are still the 404 error of the contract', async () => {
    const app = await testApp()
    const res = await app.request('/nothing-here/')
    expect(res.status).toBe(404)
    expect(((await res.json()) as { code: string }).code).toBe('MQ_NOT_FOUND')
  })
})

describe('the start line', () => {
  test('names the API base, the console, the docs and the token command', () => {
    const line = startLine('0.0.0.0', 3010, true)
    expect(line).toContain('http://127.0.0.1:3010/api/v1/mq')
    expect(line).toContain('http://127.0.0.1:3010/console')
    expect(line).toContain('http://127.0.0.1:3010/docs')
    expect(line).toContain('bun run token -- --tenant <uuid>')
    expect(line).not.toContain('\n')
  })

  test('a named host is kept (IPv6 in brackets); the binary names its own token command', () => {
    expect(startLine('::1', 8080, false)).toContain('http://[::1]:8080/console')
    expect(startLine('10.1.2.3', 80, false)).toMatch(/a token: \S+ token --tenant <uuid>$/)
    expect(binaryCommand('/opt/app/mq', '/opt/app')).toBe('./mq')
    expect(binaryCommand('/opt/app/mq', '/home/me')).toBe('/opt/app/mq')
  })
})
