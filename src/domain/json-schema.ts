import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020'
import { MqError } from './errors'
import type { Queue } from './queues'

/**
 * JSON Schema validation of payloads (draft 2020-12, by Ajv). Validators are compiled once
 * per queue version and kept, since compiling costs far more than validating.
 */
export class JsonSchemas {
  // allErrors: a producer should see every failing path at once, not one per attempt.
  private readonly ajv = new Ajv2020({ allErrors: true, strict: false })
  private readonly compiled = new Map<string, { version: number; validate: ValidateFunction }>()

  /** @throws MqError MQ_VALIDATION_FAILED when `schema` is not a usable JSON Schema. */
  assertUsable(schema: Record<string, unknown>): void {
    try {
      this.ajv.compile(schema)
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
      entry = { version, validate: this.ajv.compile(queue.schema) }
      this.compiled.set(queue.id, entry)
    }
    if (entry.validate(payload)) return []
    return (entry.validate.errors ?? []).map((e) => ({
      path: e.instancePath || '/',
      message: e.message ?? 'does not match',
    }))
  }
}
