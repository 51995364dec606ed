import { describe, expect, test } from 'bun:test'
import { testApp } from '../../helpers/harness'

// What a browser does with these files is tests/e2e/console.test.ts; this checks how they are
// served, which holds with or without Chromium on the machine.
describe('GET /console', () => {
  test('the page, its script and style: no credentials, this origin only, no inline code', async () => {
    const app = await testApp()
    for (const path of ['/console', '/console/']) {
      const res = await app.request(path)
      expect(res.status).toBe(200)
      expect(res.headers.get('content-type')).toContain('text/html')
      const csp = res.headers.get('content-security-policy') ?? ''
      expect(csp).toContain("default-src 'none'")
      expect(csp).toContain("script-src 'self'")
      expect(csp).toContain("connect-src 'self'")
      expect(csp).not.toContain('unsafe-inline')
      const html = await res.text()
      expect(html).toContain('<script type="module" src="/console/app.js"></script>')
      expect(html).not.toMatch(/(src|href)\s*=\s*["']?(https?:)?\/\//i)
    }

    const script = await app.request('/console/app.js')
    expect(script.status).toBe(200)
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8')
    const js = await script.text()
    // The console's bundle (its session-storage key is in it), without any server code.
    expect(js).toContain('mq-console-credentials')
    expect(js).not.toContain('ioredis')
    expect(js.length).toBeLessThan(100_000)

    const style = await app.request('/console/app.css')
    expect(style.headers.get('content-type')).toBe('text/css; charset=utf-8')
    const css = await style.text()
    expect(css).toContain(':focus-visible')
    expect(css).not.toMatch(/@import|url\(/i)
  })
})
