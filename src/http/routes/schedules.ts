import { createRoute } from '@hono/zod-openapi'
import {
  deleteSchedule,
  getSchedule,
  listSchedules,
  type Schedule,
  type ScheduleDeps,
  schedulePayload,
  setScheduleStatus,
  updateSchedule,
} from '../../domain/schedules'
import { requireScope } from '../middleware/auth'
import { createRouter, domainContext } from '../router'
import { commonErrors, json, jsonBody } from '../schemas/common'
import {
  ScheduleIdParam,
  ScheduleListQuery,
  ScheduleListSchema,
  ScheduleSchema,
  UpdateScheduleBody,
} from '../schemas/schedules'

const tags = ['Schedules']
const iso = (d: Date | null) => d?.toISOString() ?? null

/** A schedule as the API shows it: payload in clear, times as ISO strings. */
export function presentSchedule(deps: Pick<ScheduleDeps, 'cipher'>, s: Schedule) {
  return {
    id: s.id,
    queue: s.queue,
    cron: s.cron,
    timezone: s.timezone,
    payload: schedulePayload(deps, s),
    headers: s.headers,
    key: s.key,
    status: s.status,
    nextRunAt: iso(s.nextRunAt),
    lastRunAt: iso(s.lastRunAt),
    runs: s.runs,
    maxRuns: s.maxRuns,
    startAt: iso(s.startAt),
    endAt: iso(s.endAt),
    createdAt: s.createdAt.toISOString(),
  }
}

// Generic so each route keeps its literal method and path: `hono/client` types calls by them.
const one = <M extends 'get' | 'put' | 'delete' | 'post', P extends string>(
  method: M,
  path: P,
  summary: string
) => ({
  method,
  path,
  tags,
  summary,
  middleware: requireScope(method === 'get' ? 'mq:read' : 'mq:publish'),
})

const list = createRoute({
  ...one('get', '/', 'List recurring schedules'),
  request: { query: ScheduleListQuery },
  responses: { 200: json(ScheduleListSchema, 'a page of schedules'), ...commonErrors },
})
const get = createRoute({
  ...one('get', '/{id}', 'Get a schedule'),
  request: { params: ScheduleIdParam },
  responses: { 200: json(ScheduleSchema, 'the schedule'), ...commonErrors },
})
const update = createRoute({
  ...one('put', '/{id}', 'Change a schedule; its next run is worked out again'),
  request: { params: ScheduleIdParam, body: jsonBody(UpdateScheduleBody) },
  responses: { 200: json(ScheduleSchema, 'the schedule'), ...commonErrors },
})
const remove = createRoute({
  ...one('delete', '/{id}', 'Delete a schedule'),
  request: { params: ScheduleIdParam },
  responses: { 204: { description: 'deleted' }, ...commonErrors },
})
const pause = createRoute({
  ...one('post', '/{id}/pause', 'Pause a schedule'),
  request: { params: ScheduleIdParam },
  responses: { 200: json(ScheduleSchema, 'the schedule'), ...commonErrors },
})
const resume = createRoute({
  ...one('post', '/{id}/resume', 'Resume a schedule; occurrences missed while paused are skipped'),
  request: { params: ScheduleIdParam },
  responses: { 200: json(ScheduleSchema, 'the schedule'), ...commonErrors },
})

const toDate = (v: string | null | undefined) =>
  v === undefined ? undefined : v === null ? null : new Date(v)

/** `/api/v1/mq/schedules` */
export function createSchedulesRouter(deps: ScheduleDeps) {
  const show = (s: Schedule) => presentSchedule(deps, s)
  return createRouter()
    .openapi(list, async (c) => {
      const page = await listSchedules(deps, domainContext(c), c.req.valid('query'))
      return c.json({ items: page.items.map(show), nextCursor: page.nextCursor }, 200)
    })
    .openapi(get, async (c) =>
      c.json(show(await getSchedule(deps, domainContext(c), c.req.valid('param').id)), 200)
    )
    .openapi(update, async (c) => {
      const { startAt, endAt, ...rest } = c.req.valid('json')
      const patch = {
        ...rest,
        ...(startAt !== undefined ? { startAt: toDate(startAt) ?? null } : {}),
        ...(endAt !== undefined ? { endAt: toDate(endAt) ?? null } : {}),
      }
      return c.json(
        show(await updateSchedule(deps, domainContext(c), c.req.valid('param').id, patch)),
        200
      )
    })
    .openapi(remove, async (c) => {
      await deleteSchedule(deps, domainContext(c), c.req.valid('param').id)
      return c.body(null, 204)
    })
    .openapi(pause, async (c) =>
      c.json(
        show(await setScheduleStatus(deps, domainContext(c), c.req.valid('param').id, 'paused')),
        200
      )
    )
    .openapi(resume, async (c) =>
      c.json(
        show(await setScheduleStatus(deps, domainContext(c), c.req.valid('param').id, 'active')),
        200
      )
    )
}
