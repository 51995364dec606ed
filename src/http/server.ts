import http from 'node:http'

/** The header block the app takes; larger is `431 MQ_HEADERS_TOO_LARGE` (Bun's own default). */
export const MAX_HEADER_BYTES = 16 * 1024

/**
 * Bun's own header cap, above the app's so the app answers `431` in the contract's shape for
 * anything up to it. Past it Bun answers a bare `431` before the app runs: the cap bounds what
 * one connection may make the server buffer before a handler can refuse it.
 */
export const BUN_HEADER_CAP = 64 * 1024

/**
 * The options the service gives `Bun.serve`, and Bun's header cap raised for the process. Bun
 * answers a body over `maxRequestBodySize` itself, with no body and no request id; the app's
 * body limit (src/app.ts) answers every declared or chunked body over MAX_REQUEST_SIZE before
 * any handler reads it, so Bun's is lifted out of the way: it never turns away a body the app
 * would answer. Bun reads its header cap from node:http's `maxHeaderSize` (the
 * `--max-http-header-size` flag sets the same value), which the compiled binary has no flag for.
 */
export function bunServeLimits(): { maxRequestBodySize: number } {
  ;(http as { maxHeaderSize: number }).maxHeaderSize = BUN_HEADER_CAP
  return { maxRequestBodySize: Number.MAX_SAFE_INTEGER }
}
