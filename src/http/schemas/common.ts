import { z } from '@hono/zod-openapi'
import { MQ_ERROR_CODES } from '../../domain/errors'
import { QUEUE_NAME } from '../../domain/queues'

/** API.md: queue names are unique per tenant and safe inside Redis keys. */
export const queueName = z
  .string()
  .regex(QUEUE_NAME, 'letters, digits, ".", "_" or "-"; 1 to 200, not starting with a symbol')
  .openapi({ example: 'orders' })

export const isoDate = z.iso.datetime({ offset: true })

/** Deepest nesting of objects and arrays a JSON value in a request may have (Jackson's default). */
export const MAX_JSON_DEPTH = 1000

/**
 * Whether `value` nests objects and arrays at most `MAX_JSON_DEPTH` deep. Iterative: a recursive
 * walk would overflow the stack on exactly the values it has to refuse.
 */
export function withinJsonDepth(value: unknown, maxDepth = MAX_JSON_DEPTH): boolean {
  // Only objects and arrays are pushed, each with its depth on a stack of its own, and their
  // children are read in place: every payload is walked on the publish path, and a tuple per
  // value and an array of each object's values were most of the walk's cost. The values come
  // from JSON.parse, so for...in sees exactly their own keys.
  const objects: object[] = []
  const depths: number[] = []
  const visit = (child: unknown, depth: number) => {
    if (child !== null && typeof child === 'object') {
      objects.push(child)
      depths.push(depth)
    }
  }
  visit(value, 1)
  while (objects.length > 0) {
    const v = objects.pop() as Record<string, unknown>
    const depth = depths.pop() as number
    if (depth > maxDepth) return false
    if (Array.isArray(v)) for (let i = 0; i < v.length; i++) visit(v[i], depth + 1)
    else for (const key in v) visit(v[key], depth + 1)
  }
  return true
}

/**
 * Any JSON value a client stores (payloads, JSON Schemas), nested at most `MAX_JSON_DEPTH`
 * deep. Parsing deeper JSON is cheap, but writing it back out is not: `JSON.stringify` runs for
 * seconds and then overflows the stack past roughly 10,000 levels.
 */
export const jsonValue = z
  .unknown()
  .refine(withinJsonDepth, `nested deeper than ${MAX_JSON_DEPTH} levels`)

/** A count stored in a PostgreSQL `integer` column. */
export const storedCount = z.number().int().min(1).max(2_147_483_647)

/** The contract's error body. */
export const ErrorSchema = z
  .object({
    code: z.enum(MQ_ERROR_CODES),
    message: z.string(),
    details: z.record(z.string(), z.unknown()).optional(),
    retryAfter: z.number().optional(),
    requestId: z.string(),
  })
  .openapi('Error')

export const errorResponse = (description: string) => ({
  description,
  content: { 'application/json': { schema: ErrorSchema } },
})

/** The error answers every authenticated route can give, for the OpenAPI document. */
export const commonErrors = {
  400: errorResponse('invalid request (MQ_VALIDATION_FAILED, MQ_INVALID_JSON)'),
  401: errorResponse('missing or invalid credentials'),
  403: errorResponse('missing scope'),
  404: errorResponse('no such object for this tenant'),
  415: errorResponse('body is not application/json'),
  429: errorResponse('rate limited or queue full'),
  500: errorResponse('internal error'),
  503: errorResponse('a backing store is unavailable'),
} as const

/** A JSON response of `schema`, for `createRoute`. */
export const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { 'application/json': { schema } },
})

/** A required JSON request body of `schema`, for `createRoute`. */
export const jsonBody = <T extends z.ZodType>(schema: T) => ({
  required: true,
  content: { 'application/json': { schema } },
})

export const limitQuery = z.coerce.number().int().min(1).max(1000).default(100)
