import { Cron } from 'croner'
import type { PayloadOpener } from './consume-deps'
import type { DomainContext } from './context'
import { found, MqError, notFound } from './errors'
import type { QueueStore } from './ports'
import {
  checkedPayloadText,
  type PayloadSealer,
  type PublishDeps,
  publishableQueue,
  publishMessage,
} from './publish'
import type { Queue } from './queues'

export type ScheduleStatus = 'active' | 'paused' | 'completed'

/** What a caller sets on a recurring schedule (API.md "Recurring schedules"). */
export interface ScheduleSettings {
  cron: string
  timezone: string
  payload: unknown
  headers: Record<string, string>
  key: string | null
  maxRuns: number | null
  startAt: Date | null
  endAt: Date | null
}

/** A recurring schedule as stored. `payloadText` is sealed for encrypted queues. */
export interface Schedule extends Omit<ScheduleSettings, 'payload'> {
  id: string
  tenantId: string
  queueId: string
  queue: string
  payloadText: string
  sealed: boolean
  status: ScheduleStatus
  nextRunAt: Date | null
  lastRunAt: Date | null
  runs: number
  createdAt: Date
  updatedAt: Date
}

export type ScheduleDraft = Omit<Schedule, 'createdAt' | 'updatedAt' | 'queue'>

/** Schedule metadata (PostgreSQL); tenant-scoped except `due`, which serves the ticker. */
export interface ScheduleStore {
  create(draft: ScheduleDraft): Promise<Schedule>
  get(tenantId: string, id: string): Promise<Schedule | null>
  list(
    tenantId: string,
    query: { queue?: string; status?: ScheduleStatus; limit: number; cursor?: string }
  ): Promise<{ items: Schedule[]; nextCursor: string | null }>
  update(tenantId: string, id: string, patch: Partial<ScheduleDraft>): Promise<Schedule | null>
  remove(tenantId: string, id: string): Promise<boolean>
  /** Active schedules of every tenant due by `now`, earliest first. */
  due(now: Date, limit: number): Promise<Schedule[]>
  /** Records a run, unless another worker recorded this occurrence first. @returns whether it did. */
  recordRun(
    schedule: Schedule,
    run: { runs: number; lastRunAt: Date; nextRunAt: Date | null; status: ScheduleStatus }
  ): Promise<boolean>
}

export interface ScheduleDeps {
  schedules: ScheduleStore
  queues: QueueStore
  cipher: PayloadSealer & PayloadOpener
  publish: PublishDeps
  /** Claims one occurrence for `ttlMs` across every worker. */
  claimOccurrence(scheduleId: string, occurrenceMs: number, ttlMs: number): Promise<boolean>
}

/** How long an occurrence's claim holds: past it, another worker may fire it (deduplicated). */
const CLAIM_TTL_MS = 60_000

const invalid = (path: string, message: string) =>
  new MqError('MQ_VALIDATION_FAILED', `${path}: ${message}`, {
    issues: [{ path, code: 'invalid', message }],
  })

/** The croner job for a schedule's pattern; never started, only asked for run times. */
function cronOf(s: Pick<ScheduleSettings, 'cron' | 'timezone' | 'startAt' | 'endAt'>): Cron {
  const fields = s.cron.trim().split(/\s+/).length
  if (fields < 5 || fields > 6) throw invalid('cron', 'a cron expression has 5 or 6 fields')
  try {
    return new Cron(s.cron, {
      paused: true,
      timezone: s.timezone,
      ...(s.startAt ? { startAt: s.startAt } : {}),
      ...(s.endAt ? { stopAt: s.endAt } : {}),
    })
  } catch (err) {
    throw invalid('cron', (err as Error).message)
  }
}

/** Whether `timezone` is an IANA zone this runtime knows. */
function assertTimezone(timezone: string): void {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone })
  } catch {
    throw invalid('timezone', `unknown time zone '${timezone}'`)
  }
}

/** The first occurrence after `after`, or null when the schedule has run its course. */
export function nextOccurrence(
  s: Pick<Schedule, 'cron' | 'timezone' | 'startAt' | 'endAt' | 'maxRuns' | 'runs'>,
  after: Date
): Date | null {
  if (s.maxRuns !== null && s.runs >= s.maxRuns) return null
  return cronOf(s).nextRun(after)
}

function seal(
  deps: ScheduleDeps,
  queue: Queue,
  id: string,
  payload: unknown
): { payloadText: string; sealed: boolean } {
  // Checked now, as a message would be: every occurrence would fail the same way later.
  const text = checkedPayloadText(deps.publish, queue, payload)
  // An encrypted queue's payloads never rest in clear, in PostgreSQL either.
  return queue.encrypted
    ? {
        payloadText: deps.cipher.encrypt(text, {
          tenantId: queue.tenantId,
          queueId: queue.id,
          messageId: `schedule:${id}`,
        }),
        sealed: true,
      }
    : { payloadText: text, sealed: false }
}

/** A schedule's payload in clear. */
export function schedulePayload(deps: Pick<ScheduleDeps, 'cipher'>, s: Schedule): unknown {
  const text = s.sealed
    ? deps.cipher.decrypt(s.payloadText, {
        tenantId: s.tenantId,
        queueId: s.queueId,
        messageId: `schedule:${s.id}`,
      })
    : s.payloadText
  return JSON.parse(text)
}

/**
 * Creates a recurring schedule publishing `payload` to `queueName` at each occurrence of
 * `cron` in `timezone`.
 * @throws MqError MQ_QUEUE_NOT_FOUND, MQ_QUEUE_PAUSED, MQ_FORBIDDEN, MQ_VALIDATION_FAILED,
 *   MQ_MESSAGE_TOO_LARGE.
 */
export async function createSchedule(
  deps: ScheduleDeps,
  ctx: DomainContext,
  queueName: string,
  settings: ScheduleSettings
): Promise<Schedule> {
  const queue = await publishableQueue(deps.publish, ctx, queueName)
  assertTimezone(settings.timezone)
  if (settings.startAt && settings.endAt && settings.endAt <= settings.startAt) {
    throw invalid('endAt', 'must be after startAt')
  }
  const id = crypto.randomUUID()
  const { payload, ...rest } = settings
  const nextRunAt = nextOccurrence({ ...settings, runs: 0 }, new Date())
  return deps.schedules.create({
    ...rest,
    ...seal(deps, queue, id, payload),
    id,
    tenantId: ctx.tenantId,
    queueId: queue.id,
    status: nextRunAt ? 'active' : 'completed',
    nextRunAt,
    lastRunAt: null,
    runs: 0,
  })
}

/** @throws MqError MQ_SCHEDULE_NOT_FOUND, also for another tenant's schedule. */
export async function getSchedule(
  deps: ScheduleDeps,
  ctx: DomainContext,
  id: string
): Promise<Schedule> {
  return found(await deps.schedules.get(ctx.tenantId, id), 'MQ_SCHEDULE_NOT_FOUND', 'schedule', id)
}

export function listSchedules(
  deps: ScheduleDeps,
  ctx: DomainContext,
  query: { queue?: string; status?: ScheduleStatus; limit: number; cursor?: string }
) {
  return deps.schedules.list(ctx.tenantId, query)
}

/** Changes a schedule; its next run is worked out again from now. */
export async function updateSchedule(
  deps: ScheduleDeps,
  ctx: DomainContext,
  id: string,
  patch: Partial<ScheduleSettings>
): Promise<Schedule> {
  const current = await getSchedule(deps, ctx, id)
  const merged = { ...current, ...patch }
  if (patch.timezone !== undefined) assertTimezone(patch.timezone)
  const { payload, ...rest } = patch
  let sealed = {}
  if (payload !== undefined) {
    const queue = await deps.queues.get(ctx.tenantId, current.queue)
    if (!queue) throw notFound('MQ_SCHEDULE_NOT_FOUND', 'schedule', id)
    sealed = seal(deps, queue, id, payload)
  }
  const nextRunAt =
    current.status === 'completed' && patch.maxRuns === undefined
      ? null
      : nextOccurrence(merged, new Date())
  const status: ScheduleStatus =
    current.status === 'paused' ? 'paused' : nextRunAt ? 'active' : 'completed'
  return found(
    await deps.schedules.update(ctx.tenantId, id, { ...rest, ...sealed, nextRunAt, status }),
    'MQ_SCHEDULE_NOT_FOUND',
    'schedule',
    id
  )
}

export async function deleteSchedule(
  deps: ScheduleDeps,
  ctx: DomainContext,
  id: string
): Promise<void> {
  if (!(await deps.schedules.remove(ctx.tenantId, id)))
    throw notFound('MQ_SCHEDULE_NOT_FOUND', 'schedule', id)
}

/** Pauses or resumes; a resumed schedule skips what it missed while paused. */
export async function setScheduleStatus(
  deps: ScheduleDeps,
  ctx: DomainContext,
  id: string,
  status: 'active' | 'paused'
): Promise<Schedule> {
  const current = await getSchedule(deps, ctx, id)
  if (current.status === 'completed') return current
  const nextRunAt = status === 'active' ? nextOccurrence(current, new Date()) : current.nextRunAt
  const updated = await deps.schedules.update(ctx.tenantId, id, {
    status: status === 'active' && !nextRunAt ? 'completed' : status,
    nextRunAt,
  })
  return found(updated, 'MQ_SCHEDULE_NOT_FOUND', 'schedule', id)
}

/**
 * Fires every due occurrence of every tenant's schedules, exactly once across workers: the
 * occurrence is claimed in Redis, the message id is derived from it (so a retry after a crash
 * is a duplicate, not a second message), and the run is recorded only if the row still
 * expects this occurrence. When workers were all down over several occurrences, only the
 * latest one fires.
 * @returns how many occurrences this call published.
 */
export async function fireDueSchedules(
  deps: ScheduleDeps,
  now: Date,
  limit = 100
): Promise<number> {
  let fired = 0
  for (const s of await deps.schedules.due(now, limit)) {
    const scheduled = s.nextRunAt
    if (!scheduled) continue
    const [latest] = cronOf(s).previousRuns(1, now)
    const occurrence = latest && latest > scheduled ? latest : scheduled
    if (!(await deps.claimOccurrence(s.id, occurrence.getTime(), CLAIM_TTL_MS))) continue
    const ctx: DomainContext = {
      tenantId: s.tenantId,
      principal: { kind: 'service', name: 'scheduler' },
      requestId: `schedule:${s.id}:${occurrence.getTime()}`,
    }
    let published = false
    try {
      await publishMessage(
        deps.publish,
        ctx,
        s.queue,
        {
          payload: schedulePayload(deps, s),
          headers: {
            ...s.headers,
            'x-mq-schedule-id': s.id,
            'x-mq-scheduled-for': occurrence.toISOString(),
          },
          ...(s.key !== null ? { key: s.key } : {}),
          messageId: `${s.id}:${occurrence.getTime()}`,
        },
        { trusted: true }
      )
      published = true
      fired++
    } catch (err) {
      // A paused or full queue misses this occurrence; the schedule goes on to the next.
      if (!(err instanceof MqError)) throw err
    }
    const runs = s.runs + (published ? 1 : 0)
    const next = nextOccurrence(
      { ...s, runs },
      new Date(Math.max(occurrence.getTime(), now.getTime()))
    )
    await deps.schedules.recordRun(s, {
      runs,
      lastRunAt: occurrence,
      nextRunAt: next,
      status: next ? 'active' : 'completed',
    })
  }
  return fired
}
