import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020'
import type { FuncKeywordDefinition, RegExpEngine } from 'ajv/dist/types'
import { LRUCache } from 'lru-cache'
import { RE2JS } from 're2js'
import stableStringify from 'safe-stable-stringify'
import { MqError } from './errors'
import type { Queue } from './queue-model'

/** Bounds of a queue's schema as stored (bytes of its JSON text; nesting of objects and arrays). */
export const SCHEMA_LIMITS = { maxBytes: 65_536, maxDepth: 64 }

/** How many compiled validators a process keeps (least recently used go first). */
const DEFAULT_CAPACITY = 1000

/**
 * `pattern` and `patternProperties` on RE2 (re2js): matching is linear in the input whatever
 * the pattern, so no payload can stall the event loop the way `^(a+)+$` does a backtracking
 * RegExp. RE2 has no lookaround or backreferences; a pattern using them does not compile, and
 * the schema is refused. `translateRegExp` turns ECMA-262 spellings RE2 lacks (`\uXXXX`, `[^]`)
 * into RE2's.
 */
const re2: RegExpEngine = Object.assign(
  (pattern: string) => {
    const compiled = RE2JS.compile(RE2JS.translateRegExp(pattern))
    // Ajv keys its generated code's constants by toString(): each pattern must give its own.
    return { test: (s: string) => compiled.test(s), toString: () => pattern }
  },
  { code: 'require("re2js").RE2JS.compile' }
)

/**
 * `uniqueItems` in linear time: each item's JSON with sorted keys goes into a set. Ajv compares
 * every pair of items that are not all of one scalar type, so a 1 MB array of `[0]` took minutes.
 * Equal JSON values give equal text (numbers are JSON numbers, keys sorted), as Ajv's deep
 * equality has it.
 */
const uniqueItems: FuncKeywordDefinition = {
  keyword: 'uniqueItems',
  type: 'array',
  schemaType: 'boolean',
  error: { message: 'must NOT have duplicate items' },
  validate: (unique: boolean, items: unknown[]) => {
    if (!unique) return true
    const seen = new Set<string | undefined>()
    for (const item of items) seen.add(stableStringify(item))
    return seen.size === items.length
  },
}

/** A compiled schema, or why the stored one no longer compiles. */
type Compiled = ValidateFunction | { unusable: string }

/** The schema operations the queue verbs need (create and update compile; delete forgets). */
export interface QueueSchemas {
  /** @throws MqError MQ_VALIDATION_FAILED when `schema` is not a usable JSON Schema. */
  compile(schema: Record<string, unknown>): ValidateFunction
  /** Keeps `validate`, compiled from `queue.schema`, for the publishes to come. */
  remember(queue: Queue, validate: ValidateFunction): void
  forget(queueId: string): void
}

/**
 * JSON Schema validation of payloads (draft 2020-12, by Ajv). Each schema is compiled by an Ajv
 * instance of its own, so `$id` and `$ref` resolve only inside that one schema: no other
 * queue's or tenant's schema can be named, no `$id` is ever "taken", and nothing is fetched
 * (Ajv loads remote schemas only through `loadSchema`, which is not set). Validators are kept
 * per queue and version in a bounded LRU, since compiling costs far more than validating.
 */
export class JsonSchemas implements QueueSchemas {
  // Checks schemas against the draft 2020-12 meta-schema and holds nothing else: schemas are
  // validated here, never added.
  private readonly meta = new Ajv2020({ strict: false, allErrors: true })
  private readonly compiled: LRUCache<string, { version: number; validate: Compiled }>

  constructor(capacity = DEFAULT_CAPACITY) {
    this.compiled = new LRUCache({ max: capacity })
  }

  /** How many validators are kept. */
  get size(): number {
    return this.compiled.size
  }

  compile(schema: Record<string, unknown>): ValidateFunction {
    const result = compileAlone(this.meta, schema)
    if ('unusable' in result) {
      throw new MqError('MQ_VALIDATION_FAILED', `schema is not usable: ${result.unusable}`, {
        issues: [{ path: 'schema', code: 'invalid_schema', message: result.unusable }],
      })
    }
    return result
  }

  remember(queue: Queue, validate: ValidateFunction): void {
    this.compiled.set(queue.id, { version: queue.updatedAt.getTime(), validate })
  }

  forget(queueId: string): void {
    this.compiled.delete(queueId)
  }

  /** @returns the paths where `payload` breaks the queue's schema, or [] when it matches. */
  check = (queue: Queue, payload: unknown): Array<{ path: string; message: string }> => {
    if (!queue.schema) return []
    const version = queue.updatedAt.getTime()
    let entry = this.compiled.get(queue.id)
    if (!entry || entry.version !== version) {
      // Compiled here when another process created or changed the queue, or after a restart.
      entry = { version, validate: compileAlone(this.meta, queue.schema) }
      this.compiled.set(queue.id, entry)
    }
    const { validate } = entry
    if ('unusable' in validate) {
      // Stored before this engine refused it (a lookahead, say): the queue's owner must change it.
      return [{ path: '/', message: `the queue's schema is not usable: ${validate.unusable}` }]
    }
    if (validate(payload)) return []
    return (validate.errors ?? []).map((e) => ({
      path: e.instancePath || '/',
      message: e.message ?? 'does not match',
    }))
  }
}

/** `schema` compiled by a fresh Ajv that knows no other schema, after `meta` checked it. */
function compileAlone(meta: Ajv2020, schema: Record<string, unknown>): Compiled {
  try {
    if (!meta.validateSchema(schema)) {
      return { unusable: meta.errorsText(meta.errors, { dataVar: 'schema' }) }
    }
    const ajv = new Ajv2020({
      // allErrors: a producer should see every failing path at once, not one per attempt.
      allErrors: true,
      strict: false,
      // Checked above against `meta`; an instance of its own would compile the meta-schema again.
      meta: false,
      validateSchema: false,
      code: { regExp: re2 },
    })
    ajv.removeKeyword('uniqueItems')
    ajv.addKeyword(uniqueItems)
    return ajv.compile(schema)
  } catch (err) {
    return { unusable: (err as Error).message }
  }
}
