/**
 * `GET /docs`: Scalar's API reference (npm `@scalar/api-reference`, its standalone browser
 * bundle) over `/openapi.json`, with search, examples from the schemas and a try-it client.
 * It replaced a hand-written renderer that had none of those (docs/DECISIONS.md, issue 24).
 * The bundle is a file import: `bun build --compile` embeds it in the binary and it is read
 * only when a browser asks for it, so the page works offline and costs no memory until then.
 */
// The browser bundle is not in the package's exports, so it is named by its path; it has no
// types, and as a file import it is only a path.
// @ts-expect-error TS7016: no declaration file for a bundle imported as a file
import scalarBundle from '../../node_modules/@scalar/api-reference/dist/browser/standalone.js' with {
  type: 'file',
}

/** Where the page loads the bundle from (served by mountDocs). */
export const SCALAR_BUNDLE_PATH = '/docs/scalar.js'

/** The bundle, streamed from the binary or node_modules. */
export const scalarBundleFile = () => Bun.file(scalarBundle as string)

/**
 * What Scalar may do: the document and try-it requests go to this service only (the CSP says
 * so too); no web fonts, no telemetry, no AI agent or MCP features, which would call out.
 */
const CONFIGURATION = {
  url: '/openapi.json',
  withDefaultFonts: false,
  telemetry: false,
  agent: { disabled: true },
  mcp: { disabled: true },
  hideClientButton: true,
  showDeveloperTools: 'never',
  showOperationId: true,
  documentDownloadType: 'json',
  defaultOpenAllTags: false,
}

export const DOCS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Message queue service API</title>
<link rel="icon" href="data:,">
</head>
<body>
<div id="app"></div>
<script src="${SCALAR_BUNDLE_PATH}"></script>
<script>Scalar.createApiReference('#app', ${JSON.stringify(CONFIGURATION)})</script>
</body>
</html>
`
