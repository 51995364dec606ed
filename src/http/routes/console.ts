import type { OpenAPIHono } from '@hono/zod-openapi'
import styles from '../../console/console.css' with { type: 'text' }
import { bundleConsole } from '../console-bundle' with { type: 'macro' }
import type { AppEnv } from '../env'

/** Bundled when this module is transpiled (see console-bundle.ts), so the binary carries it. */
const script = bundleConsole()

/**
 * Only the console's own script and style, and calls to this origin's API. No inline code, so
 * an API string that somehow reached the page as markup could not run. `data:` images only for
 * the empty icon, which keeps the browser from asking for a /favicon.ico there is none of.
 */
const CONSOLE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>MQ console</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/console/app.css">
<script type="module" src="/console/app.js"></script>
</head>
<body>
<div id="app"><main><p>Loading the console…</p><noscript>The console needs JavaScript.</noscript></main></div>
<div id="announcer" aria-live="polite"></div>
</body>
</html>
`

/** What `mountConsole` serves: static files outside the API base, not API operations. */
export const CONSOLE_PATHS = {
  page: '/console',
  pageSlash: '/console/',
  script: '/console/app.js',
  style: '/console/app.css',
} as const

/**
 * Mounts the operator console: `GET /console` (also with a trailing slash) and its script and
 * style. They need no credentials; the page asks for a token and sends it to the API itself.
 */
export function mountConsole(app: OpenAPIHono<AppEnv>): void {
  const headers = {
    'content-security-policy': CONSOLE_CSP,
    'x-content-type-options': 'nosniff',
    'cache-control': 'no-cache',
  }
  for (const path of [CONSOLE_PATHS.page, CONSOLE_PATHS.pageSlash]) {
    app.get(path, (c) => c.html(PAGE, 200, headers))
  }
  app.get(CONSOLE_PATHS.script, (c) =>
    c.body(script, 200, { ...headers, 'content-type': 'text/javascript; charset=utf-8' })
  )
  app.get(CONSOLE_PATHS.style, (c) =>
    c.body(styles, 200, { ...headers, 'content-type': 'text/css; charset=utf-8' })
  )
}
