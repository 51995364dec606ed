import type { MiddlewareHandler } from 'hono'
import { MqError } from '../../domain/errors'

/**
 * Answers a request whose header block (request target and header lines) is over `maxBytes`
 * with `431` in the contract's shape. Bun answers an over-long header block itself, with no
 * body and no request id, so its own cap is set above this one (src/http/server.ts) and the
 * app is the one that refuses. Lengths are counted in UTF-16 units, which is bytes for the
 * Latin-1 text headers hold.
 */
export function limitHeaders(maxBytes: number): MiddlewareHandler {
  return (c, next) => {
    const raw = c.req.raw
    let size = raw.url.length
    raw.headers.forEach((value, name) => {
      // ": " and CRLF
      size += name.length + value.length + 4
    })
    if (size > maxBytes) {
      throw new MqError('MQ_HEADERS_TOO_LARGE', `request headers are over ${maxBytes} bytes`, {
        limit: maxBytes,
      })
    }
    return next()
  }
}
