import { expect } from 'bun:test'
import { ErrorSchema } from '../../src/http/schemas/common'
import { call } from './harness'

/**
 * What the HTTP and security tests call the API with. The base is written out rather than taken
 * from src/app.ts: a test should fail if the contract's path moved.
 */
export const BASE = '/api/v1/mq'

export { call }

/** An answer from `call`. */
export type Answer = Awaited<ReturnType<typeof call>>

/**
 * An error answer in the contract's envelope with `status` and `code`; its body is returned for
 * more checks. `what` names the case in a failure message, for tests that loop over many.
 */
export function expectError(res: Answer, status: number, code: string, what = '') {
  expect({ what, status: res.status }).toEqual({ what, status })
  const body = ErrorSchema.parse(res.body)
  expect({ what, code: body.code }).toEqual({ what, code: code as typeof body.code })
  return body
}
