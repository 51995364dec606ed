import type { FilterCondition, MessageFilter } from './subscriptions'

/** What a filter can look at. */
export interface FilterSubject {
  headers: Record<string, string>
  key: string | null
  payload: unknown
}

function compare(a: unknown, b: unknown): number | null {
  if (typeof a === 'number' && typeof b === 'number') return a - b
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0
  return null
}

function matches(value: unknown, condition: FilterCondition): boolean {
  if (condition === null || typeof condition !== 'object') return value === condition
  if ('exists' in condition && (value !== undefined) !== condition.exists) return false
  if ('eq' in condition && value !== condition.eq) return false
  if (condition.in !== undefined && !condition.in.includes(value)) return false
  if (
    condition.prefix !== undefined &&
    !(typeof value === 'string' && value.startsWith(condition.prefix))
  ) {
    return false
  }
  if (condition.gt !== undefined) {
    const c = compare(value, condition.gt)
    if (c === null || c <= 0) return false
  }
  if (condition.lt !== undefined) {
    const c = compare(value, condition.lt)
    if (c === null || c >= 0) return false
  }
  return true
}

/**
 * Whether a message passes a subscription's `messageFilter`: every named header, the key and
 * every named top-level payload field must satisfy its condition (a bare value means `eq`).
 */
export function matchesFilter(filter: MessageFilter | null, subject: FilterSubject): boolean {
  if (!filter) return true
  for (const [name, condition] of Object.entries(filter.headers ?? {})) {
    if (!matches(subject.headers[name], condition)) return false
  }
  if (filter.key !== undefined && !matches(subject.key ?? undefined, filter.key)) return false
  const payload =
    subject.payload !== null &&
    typeof subject.payload === 'object' &&
    !Array.isArray(subject.payload)
      ? (subject.payload as Record<string, unknown>)
      : {}
  for (const [name, condition] of Object.entries(filter.payload ?? {})) {
    if (!matches(payload[name], condition)) return false
  }
  return true
}
