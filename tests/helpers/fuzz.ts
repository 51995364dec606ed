import fc from 'fast-check'
import { ErrorSchema } from '../../src/http/schemas/common'
import { call, newTenant, SERVICE_TOKEN, token } from './harness'
import { mountedRoutes } from './routes'

/*
 * Request fuzzing from the OpenAPI document (RELIABILITY.md S6). `zod-fast-check` would derive
 * arbitraries from the zod schemas, but it supports zod 3 and fast-check < 4 only; the document
 * is generated from the same schemas the handlers validate with, so its JSON Schemas serve as
 * well. Valid values are then mutated: wrong types, out-of-range and huge numbers, deep nesting,
 * prototype-pollution keys, hostile strings, broken JSON, odd content types, stray query keys.
 */

/** A JSON Schema node of the document. */
export type Schema = { [key: string]: unknown }

/** The parts of the OpenAPI document the fuzzer reads. */
export interface OpenApiDoc {
  paths: Record<string, Record<string, Operation>>
  components?: { schemas?: Record<string, Schema> }
}

interface Operation {
  parameters?: Array<{ name: string; in: string; required?: boolean; schema?: Schema }>
  requestBody?: { content?: Record<string, { schema?: Schema }> }
}

/** Values of fields that exist for the fuzzed tenant, so cases get past "not found". */
export type Hints = Record<string, fc.Arbitrary<unknown>>

/** One generated request. */
export interface FuzzRequest {
  method: string
  path: string
  headers: Record<string, string>
  body?: string
}

const MAX_ITEMS = 4
const MAX_STRING = 40
/** Replaced in the JSON text by that many nested arrays: JSON.stringify itself would overflow. */
const DEEP = '\u0000deep:'

const HOSTILE_STRINGS = [
  '',
  ' ',
  '\u0000',
  '\ud800',
  'ä队列😀\u202e',
  '../../etc/passwd',
  '%2e%2e%2f%00',
  '{t}:*[a]?',
  '__proto__',
  'constructor',
  '$' + '{jndi:ldap://127.0.0.1/a}',
  '<script>alert(1)</script>',
  "' OR 1=1 --",
  'NaN',
  '1e999',
  '-0',
  'x'.repeat(10_001),
]
const HOSTILE_NUMBERS = [
  0,
  -0,
  -1,
  0.5,
  2 ** 31,
  2 ** 53,
  2 ** 53 + 2,
  1e308,
  -1e308,
  5e-324,
  Number.MAX_SAFE_INTEGER,
]

/** Objects whose keys try to reach `Object.prototype` (parsed, so `__proto__` is an own key). */
const POLLUTERS: unknown[] = [
  JSON.parse('{"__proto__":{"polluted":"yes"}}'),
  JSON.parse('{"constructor":{"prototype":{"polluted":"yes"}}}'),
  JSON.parse('{"__proto__":null,"toString":"x","valueOf":1,"hasOwnProperty":[]}'),
]

/** A value of the wrong kind for almost any field. */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(...HOSTILE_STRINGS),
  fc.constantFrom(...HOSTILE_NUMBERS),
  fc.constantFrom(null, true, false, [], {}),
  fc.constantFrom(...POLLUTERS),
  fc.integer({ min: 100, max: 100_000 }).map((n) => `${DEEP}${n}`),
  fc.jsonValue({ maxDepth: 3 })
)

/** A string for a path segment, query value or header that the schema would refuse or not. */
const hostileString = fc.oneof(
  fc.constantFrom(...HOSTILE_STRINGS),
  fc.string({ maxLength: 60 }),
  fc.constantFrom(...HOSTILE_NUMBERS).map(String)
)

function resolve(schema: Schema, doc: OpenApiDoc): Schema {
  const ref = schema.$ref
  if (typeof ref !== 'string') return schema
  const name = ref.replace('#/components/schemas/', '')
  const target = doc.components?.schemas?.[name]
  if (!target) throw new Error(`unresolved ${ref}`)
  return resolve(target, doc)
}

/** `allOf` as zod's `.extend()` emits it: the members' properties and required keys merged. */
function mergeAllOf(schema: Schema, doc: OpenApiDoc): Schema {
  const members = (schema.allOf as Schema[]).map((m) => resolve(m, doc))
  return {
    type: 'object',
    properties: Object.assign({}, ...members.map((m) => m.properties ?? {})),
    required: members.flatMap((m) => (m.required as string[] | undefined) ?? []),
    additionalProperties: members.at(-1)?.additionalProperties,
  }
}

const num = (v: unknown, fallback: number) => (typeof v === 'number' ? v : fallback)

function stringValue(schema: Schema): fc.Arbitrary<string> {
  const min = num(schema.minLength, 0)
  const max = Math.min(num(schema.maxLength, min + MAX_STRING), min + MAX_STRING)
  if (schema.format === 'uuid') return fc.uuid()
  if (schema.format === 'date-time') {
    return fc
      .date({ min: new Date('1970-01-01'), max: new Date('2200-01-01'), noInvalidDate: true })
      .map((d) => d.toISOString())
  }
  if (schema.format === 'uri') {
    return fc.oneof(
      fc.constantFrom('https://example.com/hook', 'http://example.com/x?y=1'),
      fc.constantFrom('http://127.0.0.1/x', 'https://169.254.169.254/', 'http://[::1]/'),
      fc.webUrl()
    )
  }
  if (typeof schema.pattern === 'string') {
    const maxLength = num(schema.maxLength, Number.POSITIVE_INFINITY)
    return fc
      .stringMatching(new RegExp(schema.pattern))
      .filter((s) => s.length >= min && s.length <= maxLength)
  }
  return fc.string({ minLength: min, maxLength: max })
}

function numberValue(schema: Schema, integer: boolean): fc.Arbitrary<number> {
  const min = num(schema.minimum, -1e12)
  const max = num(schema.maximum, 1e12)
  const inner = integer
    ? fc.integer({ min: Math.max(min, -(2 ** 31)), max: Math.min(max, 2 ** 31) })
    : fc.double({ min, max, noNaN: true, noDefaultInfinity: true })
  // Boundaries find off-by-one limits more often than uniform values do.
  return fc.oneof(fc.constantFrom(min, max), inner)
}

/**
 * Values `schema` accepts (as far as JSON Schema says; refinements in zod may still refuse
 * them). A field named in `hints` takes the hinted values instead.
 */
export function validValue(
  raw: Schema,
  doc: OpenApiDoc,
  hints: Hints,
  name?: string
): fc.Arbitrary<unknown> {
  const hint = name === undefined ? undefined : hints[name]
  return hint ?? derive(resolve(raw, doc), doc, hints)
}

function derive(schema: Schema, doc: OpenApiDoc, hints: Hints): fc.Arbitrary<unknown> {
  if (schema.allOf) return derive(mergeAllOf(schema, doc), doc, hints)
  if ('const' in schema) return fc.constant(schema.const)
  if (Array.isArray(schema.enum)) return fc.constantFrom(...schema.enum)
  const union = (schema.anyOf ?? schema.oneOf) as Schema[] | undefined
  if (union) return fc.oneof(...union.map((s) => validValue(s, doc, hints)))
  if (Array.isArray(schema.type)) {
    return fc.oneof(...schema.type.map((type) => derive({ ...schema, type }, doc, hints)))
  }
  switch (schema.type) {
    case 'string':
      return stringValue(schema)
    case 'integer':
      return numberValue(schema, true)
    case 'number':
      return numberValue(schema, false)
    case 'boolean':
      return fc.boolean()
    case 'null':
      return fc.constant(null)
    case 'array': {
      const minLength = num(schema.minItems, 0)
      const maxLength = Math.min(num(schema.maxItems, minLength + MAX_ITEMS), minLength + MAX_ITEMS)
      const items = schema.items ? validValue(schema.items as Schema, doc, hints) : fc.jsonValue()
      return fc.array(items, { minLength, maxLength })
    }
    case 'object': {
      const properties = (schema.properties ?? {}) as Record<string, Schema>
      if (Object.keys(properties).length === 0 && typeof schema.additionalProperties === 'object') {
        const value = validValue(schema.additionalProperties as Schema, doc, hints)
        return fc.dictionary(fc.string({ minLength: 1, maxLength: 20 }), value, { maxKeys: 4 })
      }
      const record = Object.fromEntries(
        Object.entries(properties).map(([key, s]) => [key, validValue(s, doc, hints, key)])
      )
      return fc.record(record, { requiredKeys: (schema.required as string[] | undefined) ?? [] })
    }
    default:
      return fc.jsonValue({ maxDepth: 3 })
  }
}

/**
 * `value` with one spot changed: a key dropped, added or set to a hostile value, at a depth
 * of up to three, chosen by `path`.
 */
function mutate(value: unknown, path: number[], action: number, replacement: unknown): unknown {
  const [step, ...rest] = path
  if (value === null || typeof value !== 'object' || step === undefined) return replacement
  const copy: Record<string, unknown> | unknown[] = Array.isArray(value)
    ? [...value]
    : // Copied key by key so a parsed `__proto__` key stays an own property.
      Object.defineProperties({}, Object.getOwnPropertyDescriptors(value))
  const keys = Object.keys(copy)
  const key = keys.length > 0 ? keys[step % keys.length]! : undefined
  if (key === undefined || action === 0) {
    const added = Array.isArray(copy) ? String(copy.length) : `extra${step}`
    Object.defineProperty(copy, added, { value: replacement, enumerable: true, writable: true })
  } else if (action === 1) {
    if (Array.isArray(copy)) copy.splice(Number(key), 1)
    else delete copy[key]
  } else {
    const child = (copy as Record<string, unknown>)[key]
    Object.defineProperty(copy, key, {
      value: mutate(child, rest, action, replacement),
      enumerable: true,
      writable: true,
    })
  }
  return copy
}

/** JSON text of `value`, with deep-nesting markers expanded. */
function toJson(value: unknown): string {
  return JSON.stringify(value).replace(
    new RegExp(`"${DEEP.replace('\u0000', '\\\\u0000')}(\\d+)"`, 'g'),
    (_, n: string) => '['.repeat(Number(n)) + ']'.repeat(Number(n))
  )
}

const BROKEN_BODIES = [
  '',
  '{',
  '[]',
  'null',
  '"text"',
  '123',
  '\ufeff{}',
  '{"a":1e99999}',
  '{"queue":"a","queue":"b"}',
  '{"a":"\\ud800"}',
  '{"a":1}{"b":2}',
  `${'['.repeat(200_000)}${']'.repeat(200_000)}`,
  `{"payload":${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}}`,
]

/** Request bodies: mostly valid or one mutation away from it, else any JSON or none at all. */
export function bodyArbitrary(schema: Schema | undefined, doc: OpenApiDoc, hints: Hints) {
  const valid = schema ? validValue(schema, doc, hints) : fc.jsonValue({ maxDepth: 2 })
  const mutated = fc
    .tuple(valid, fc.array(fc.nat(), { minLength: 1, maxLength: 3 }), fc.nat(2), hostileValue)
    .map(([v, path, action, replacement]) => mutate(v, path, action, replacement))
  return fc.oneof(
    { arbitrary: valid.map(toJson), weight: 4 },
    { arbitrary: mutated.map(toJson), weight: 5 },
    { arbitrary: hostileValue.map(toJson), weight: 1 },
    { arbitrary: fc.constantFrom(...BROKEN_BODIES), weight: 1 },
    { arbitrary: fc.string({ maxLength: 100 }), weight: 1 }
  )
}

/** Path segments as sent: broken or tricky percent-encoding that no encoder would produce. */
const RAW_SEGMENTS = [
  '%',
  '%zz',
  '%ED%A0%80',
  '%C0%AF',
  '%00',
  '%2F',
  '..%2f..',
  '%252e',
  '.',
  '..',
]

/** A path segment for `value`; lone surrogates become U+FFFD, as a URL would carry them. */
const encodeSegment = (value: unknown) => encodeURIComponent(String(value).toWellFormed())

const CONTENT_TYPES = [
  'application/json; charset=utf-8',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/json-patch+json',
  'APPLICATION/JSON',
  '',
]

/** Header values a client could send: printable ASCII (what fetch lets through), some long. */
const headerValue = fc.oneof(
  fc.stringMatching(/^[\x20-\x7e]{0,80}$/),
  fc.constantFrom('x'.repeat(8000), ' ', '%00', '../..')
)

/**
 * Requests for one operation: path parameters from the schema, the hints or hostile strings;
 * the query likewise plus stray keys; a body when the operation takes one (and now and then
 * when it does not); content type and optional headers mostly right, sometimes not.
 */
export function requestArbitrary(
  method: string,
  route: string,
  doc: OpenApiDoc,
  hints: Hints,
  auth: Record<string, string>
): fc.Arbitrary<FuzzRequest> {
  const op = doc.paths[route.replace(/:(\w+)/g, '{$1}')]?.[method.toLowerCase()]
  const params = op?.parameters ?? []
  const pathParams = [...route.matchAll(/:(\w+)/g)].map(([, name]) => {
    const schema = params.find((p) => p.in === 'path' && p.name === name)?.schema ?? {
      type: 'string',
    }
    const value = fc.oneof(
      { arbitrary: validValue(schema, doc, hints, name).map(encodeSegment), weight: 8 },
      { arbitrary: hostileString.map(encodeSegment), weight: 2 },
      { arbitrary: fc.constantFrom(...RAW_SEGMENTS), weight: 1 }
    )
    return value.map((v) => [name!, v] as const)
  })
  const queryParams = params
    .filter((p) => p.in === 'query')
    .map((p) =>
      fc.option(
        fc
          .oneof(
            { arbitrary: validValue(p.schema ?? {}, doc, hints, p.name).map(String), weight: 4 },
            { arbitrary: hostileString, weight: 1 }
          )
          .map((v) => [p.name, v] as const),
        { nil: undefined, freq: 3 }
      )
    )
  const stray = fc.option(fc.tuple(fc.constantFrom('limit', 'x', '__proto__', ''), hostileString), {
    nil: undefined,
    freq: 4,
  })
  const schema = op?.requestBody?.content?.['application/json']?.schema
  const body = fc.option(bodyArbitrary(schema, doc, hints), {
    nil: undefined,
    freq: schema ? 12 : 2,
  })
  const headers = fc.record(
    {
      'content-type': fc.oneof(
        { arbitrary: fc.constant('application/json'), weight: 8 },
        { arbitrary: fc.constantFrom(...CONTENT_TYPES), weight: 1 }
      ),
      'idempotency-key': headerValue,
      'x-request-id': headerValue,
      'x-service-name': headerValue,
      'x-custom': headerValue,
    },
    { requiredKeys: ['content-type'] }
  )
  return fc
    .tuple(fc.tuple(...pathParams), fc.tuple(...queryParams), stray, body, headers)
    .map(([path, query, extra, text, extraHeaders]) => {
      let url = route
      for (const [name, value] of path) url = url.replace(`:${name}`, value)
      const search = new URLSearchParams()
      for (const entry of [...query, extra]) if (entry) search.append(entry[0], entry[1])
      const qs = search.toString()
      return {
        method,
        path: qs ? `${url}?${qs}` : url,
        headers: { ...extraHeaders, ...auth },
        ...(text !== undefined && method !== 'GET' ? { body: text } : {}),
      }
    })
}

/** Signs of an implementation detail in an error answer: stack frames, source paths. */
const INTERNALS = /\bat \S+ \(|\bat .+:\d+:\d+|node_modules|\/work\/|\/src\/|\.ts:\d+|Error: /

/**
 * What is wrong with an answer, or null: a 5xx, an error without the contract's envelope and
 * request id, or an error that shows internals.
 */
export function judge(res: Response, text: string): string | null {
  if (res.status >= 500) return `status ${res.status}: ${text.slice(0, 300)}`
  if (res.status < 400) return null
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    return `status ${res.status} without a JSON body: ${text.slice(0, 200)}`
  }
  const parsed = ErrorSchema.safeParse(body)
  if (!parsed.success) return `status ${res.status} outside the envelope: ${text.slice(0, 300)}`
  if (!parsed.data.requestId || parsed.data.requestId !== res.headers.get('x-request-id')) {
    return `status ${res.status} without the request id`
  }
  if (INTERNALS.test(text)) return `status ${res.status} shows internals: ${text.slice(0, 300)}`
  return null
}

type AppLike = Parameters<typeof call>[0] & { routes: Array<{ method: string; path: string }> }

/** What one route's fuzzing found. */
export interface RouteReport {
  route: string
  /** Answers by status code. */
  statuses: Record<number, number>
  /** Time the route's cases took, fixtures excluded. */
  ms: number
  /** fast-check's report of the shrunk counter-example, when a case failed. */
  failure?: string
}

const CRONS = ['0 0 1 1 *', '*/5 * * * *', '0 8 * * 1-5', '* * * * * *', '0 0 31 2 *', '61 * * * *']
const ZONES = ['UTC', 'Asia/Shanghai', 'America/New_York', 'Not/AZone', '+08:00', 'utc']

/**
 * A tenant with something behind every kind of id: queues with messages and a dead letter, a
 * pull and a webhook subscription, a delivery in flight, a schedule. The hints name them.
 */
async function fixtures(app: AppLike): Promise<{ tenant: string; hints: Hints }> {
  const tenant = newTenant()
  const as = async (method: string, path: string, body?: unknown) => {
    const res = await call(app, method, path, { tenant, body })
    if (res.status >= 300) throw new Error(`fixture ${method} ${path}: ${res.status}`)
    return res.body
  }
  const base = '/api/v1/mq'
  await as('POST', `${base}/queues`, { name: 'fz', partitionCount: 2 })
  // Every publishing route reaches a tenant schema through it (`names` below).
  await as('POST', `${base}/queues`, {
    name: 'fz-typed',
    schema: {
      $id: 'urn:tenantA:payments',
      type: 'object',
      properties: { s: { type: 'string', pattern: '^(a+)+$' } },
      patternProperties: { '^x-': { type: 'integer' } },
    },
  })
  const pull = await as('POST', `${base}/subscriptions`, {
    queue: 'fz',
    consumerGroup: 'g',
    consumerName: 'c',
    subscriptionType: 'redis_consumer',
    offsetResetPolicy: 'earliest',
    maxRetryAttempts: 1,
  })
  const hook = await as('POST', `${base}/subscriptions`, {
    queue: 'fz',
    consumerGroup: 'h',
    consumerName: 'c',
    subscriptionType: 'webhook',
    handlerConfig: { url: 'https://example.com/hook' },
  })
  const published = await as('POST', `${base}/publish/batch`, {
    queue: 'fz',
    messages: Array.from({ length: 6 }, (_, i) => ({ messageId: `fz-${i}`, payload: { i } })),
  })
  const delayed = await as('POST', `${base}/publish/delayed`, {
    queue: 'fz',
    payload: 'later',
    delayMs: 3_600_000,
  })
  const schedule = await as('POST', `${base}/publish/scheduled`, {
    queue: 'fz',
    payload: 'cron',
    cron: '0 0 1 1 *',
  })
  const { messages } = await as('POST', `${base}/subscriptions/${pull.id}/pull`, { max: 2 })
  await as('POST', `${base}/subscriptions/${pull.id}/nack`, { receipts: [messages[0].receipt] })
  const names = fc.oneof(
    fc.constantFrom('fz', 'fz.dlq', 'fz-typed'),
    stringValue({ pattern: '^[a-z]{1,8}$' })
  )
  const ids = [pull.id, hook.id, schedule.id]
  const messageIds = [
    ...published.results.map((r: { messageId: string }) => r.messageId),
    delayed.messageId,
  ]
  const receipt = fc.oneof(fc.constant(messages[1].receipt as string), fc.string({ maxLength: 80 }))
  return {
    tenant,
    hints: {
      name: names,
      queue: names,
      toQueue: names,
      deadLetterQueue: fc.option(names, { nil: null }),
      id: fc.oneof(fc.constantFrom(...ids), fc.uuid()),
      messageId: fc.oneof(
        fc.constantFrom(...messageIds),
        stringValue({ pattern: '^[!-~]{1,20}$' })
      ),
      receipts: fc.array(receipt, { minLength: 1, maxLength: 3 }),
      // Long polls would make a case wait up to 20 s; the wait itself is not what is fuzzed.
      waitMs: fc.integer({ min: 0, max: 20 }),
      cron: fc.oneof(fc.constantFrom(...CRONS), fc.string({ minLength: 9, maxLength: 30 })),
      timezone: fc.oneof(fc.constantFrom(...ZONES), fc.string({ minLength: 1, maxLength: 64 })),
      tenantId: fc.oneof(fc.constant(tenant), fc.uuid()),
      schema: fc.option(tenantSchema, { nil: null }),
      payload: payloads,
    },
  }
}

/**
 * Patterns a tenant might put in a schema: catastrophic for a backtracking engine, spellings
 * RE2 lacks, syntax RE2 refuses (lookaround, backreferences) and broken syntax.
 */
const SCHEMA_PATTERNS = [
  '^(a+)+$',
  '(a|aa)*b',
  '^(\\w+\\s?)*$',
  '^[\\u0041-\\u005A]+$',
  '\\p{L}+',
  '[^]',
  'a(?=b)',
  '(?<!x)y',
  '(a)\\1',
  '[',
  'a{1000}',
]

/** `$id` and `$ref` values: another tenant's id, URLs (never fetched), fragments, nonsense. */
const SCHEMA_IDS = [
  'urn:tenantA:payments',
  'https://schemas.example/order.json',
  'http://127.0.0.1:9/remote.json',
  '#',
  '#/$defs/a',
  'not a uri',
]

/** Tenant JSON Schemas, the code a tenant has the service run on every publish. */
export const tenantSchema: fc.Arbitrary<unknown> = fc.letrec<{ schema: unknown }>((tie) => ({
  schema: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.record({ type: fc.constantFrom('string', 'integer', 'number', 'object', 'array', 'null') }),
    fc.record(
      { type: fc.constant('string'), pattern: fc.constantFrom(...SCHEMA_PATTERNS) },
      { requiredKeys: ['pattern'] }
    ),
    fc.record({
      type: fc.constant('object'),
      patternProperties: fc.dictionary(fc.constantFrom(...SCHEMA_PATTERNS), tie('schema'), {
        maxKeys: 2,
      }),
    }),
    fc.record(
      {
        $id: fc.constantFrom(...SCHEMA_IDS),
        properties: fc.dictionary(fc.string({ maxLength: 6 }), tie('schema'), { maxKeys: 3 }),
        required: fc.array(fc.string({ maxLength: 6 }), { maxLength: 3 }),
        $defs: fc.record({ a: tie('schema') }),
      },
      { requiredKeys: [] }
    ),
    fc.record({ $ref: fc.constantFrom(...SCHEMA_IDS) }),
    fc.record(
      { type: fc.constant('array'), items: tie('schema'), uniqueItems: fc.boolean() },
      { requiredKeys: ['items'] }
    ),
    fc.jsonValue({ maxDepth: 3 })
  ),
})).schema

/** Payloads aimed at the fixture queue's schema, beside any JSON. */
const payloads = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.record({
    s: fc.constantFrom('aaaa', `${'a'.repeat(36)}!`, 'ABC'),
    'x-n': fc.oneof(fc.integer(), fc.string({ maxLength: 4 })),
  }),
  fc.array(fc.constant(`${'a'.repeat(36)}!`), { maxLength: 6 })
)

/**
 * Fuzzes every mounted route with `runs` cases, each route against fresh fixtures, as a
 * tenant with every scope (the internal API with the service token for that tenant). Routes the
 * document does not describe (the document itself, the docs page) get stray queries and headers.
 */
export async function fuzzRoutes(
  app: AppLike,
  opts: { runs: number; seed?: number }
): Promise<RouteReport[]> {
  const doc = (await (await app.request('/openapi.json')).json()) as OpenApiDoc
  const reports: RouteReport[] = []
  for (const route of mountedRoutes(app)) {
    const [method, path] = route.split(' ') as [string, string]
    const { tenant, hints } = await fixtures(app)
    const auth: Record<string, string> = path.startsWith('/internal/')
      ? { 'x-service-token': SERVICE_TOKEN, 'x-tenant-id': tenant }
      : { authorization: `Bearer ${await token(tenant)}` }
    const op = doc.paths[path.replace(/:(\w+)/g, '{$1}')]?.[method.toLowerCase()]
    // Nothing but headers and a stray query to vary (and some, like a Prometheus scrape, are
    // slow): a tenth of the cases finds what the full count would.
    const inputless = !op?.parameters?.length && !op?.requestBody
    const runs = inputless ? Math.ceil(opts.runs / 10) : opts.runs
    const report: RouteReport = { route, statuses: {}, ms: 0 }
    const started = performance.now()
    try {
      await fc.assert(
        fc.asyncProperty(requestArbitrary(method, path, doc, hints, auth), async (req) => {
          const res = await app.request(req.path, {
            method: req.method,
            headers: req.headers,
            body: req.body,
          })
          const text = await res.text()
          report.statuses[res.status] = (report.statuses[res.status] ?? 0) + 1
          const problem = judge(res, text)
          if (problem) throw new Error(problem)
        }),
        { numRuns: runs, ...(opts.seed !== undefined ? { seed: opts.seed } : {}) }
      )
    } catch (err) {
      report.failure = (err as Error).message
    }
    report.ms = performance.now() - started
    reports.push(report)
  }
  return reports
}
