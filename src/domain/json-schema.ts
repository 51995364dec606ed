import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020'
import { MqError } from './errors'
import type { Queue } from './queues'

/**
 * Validators kept at most: a deleted queue's is never looked up again, so past this the
 * oldest compiled goes (recompiling one costs about a millisecond).
 */
const MAX_COMPILED = 10_000

/**
 * JSON Schema validation of payloads (draft 2020-12, by Ajv). Validators are compiled once
 * per queue version and kept here, since compiling costs far more than validating; Ajv's own
 * registry is put back as it was after each compile (see {@link JsonSchemas.compile}).
 */
export class JsonSchemas {
  // allErrors: a producer should see every failing path at once, not one per attempt.
  private readonly ajv = new Ajv2020({ allErrors: true, strict: false })
  private readonly compiled = new Map<string, { version: number; validate: ValidateFunction }>()

  constructor(private readonly maxCompiled = MAX_COMPILED) {}

  /** @throws MqError MQ_VALIDATION_FAILED when `schema` is not a usable JSON Schema. */
  assertUsable(schema: Record<string, unknown>): void {
    try {
      this.compile(schema)
    } catch (err) {
      throw new MqError(
        'MQ_VALIDATION_FAILED',
        `schema is not a valid JSON Schema: ${(err as Error).message}`,
        {
          issues: [{ path: 'schema', code: 'invalid_schema', message: (err as Error).message }],
        }
      )
    }
  }

  /** @returns the paths where `payload` breaks the queue's schema, or [] when it matches. */
  check = (queue: Queue, payload: unknown): Array<{ path: string; message: string }> => {
    if (!queue.schema) return []
    const version = queue.updatedAt.getTime()
    let entry = this.compiled.get(queue.id)
    if (!entry || entry.version !== version) {
      entry = { version, validate: this.compile(queue.schema) }
      this.compiled.delete(queue.id)
      if (this.compiled.size >= this.maxCompiled) {
        this.compiled.delete(this.compiled.keys().next().value as string)
      }
      this.compiled.set(queue.id, entry)
    }
    if (entry.validate(payload)) return []
    return (entry.validate.errors ?? []).map((e) => ({
      path: e.instancePath || '/',
      message: e.message ?? 'does not match',
    }))
  }

  /** Validators kept, one a queue, at most `maxCompiled`. */
  get kept(): number {
    return this.compiled.size
  }

  /** Schemas and references Ajv holds: its meta-schemas only, however many were compiled. */
  get registered(): number {
    return Object.keys(this.ajv.refs).length + Object.keys(this.ajv.schemas).length
  }

  /**
   * Ajv registers every schema it compiles, by object and by each `$id` in it, for good: a
   * process would keep every schema any tenant ever sent, and a schema whose `$id` was seen
   * before (the same queue's, reloaded, or another tenant's) would fail to compile. A built
   * validator needs none of that, so the registry is put back as it was; compiling is
   * synchronous, so no other compile sees it in between.
   */
  private compile(schema: Record<string, unknown>): ValidateFunction {
    const refs = { ...this.ajv.refs }
    const schemas = { ...this.ajv.schemas }
    try {
      return this.ajv.compile(schema)
    } finally {
      this.ajv.removeSchema(schema)
      restore(this.ajv.refs, refs)
      restore(this.ajv.schemas, schemas)
    }
  }
}

/** Makes `target` hold exactly what `saved` does. */
function restore<T>(target: Record<string, T>, saved: Record<string, T>): void {
  for (const key of Object.keys(target)) if (!(key in saved)) delete target[key]
  Object.assign(target, saved)
}
