import {
  deleteSchedule,
  getSchedule,
  listSchedules,
  type Schedule,
  type ScheduleDeps,
  setScheduleStatus,
  updateSchedule,
} from '../../domain/schedules'
import { presentSchedule } from '../presenters'
import { type Guard, routes } from '../route'
import { createRouter, domainContext } from '../router'
import { commonErrors, json, jsonBody } from '../schemas/common'
import {
  ScheduleIdParam,
  ScheduleListQuery,
  ScheduleListSchema,
  ScheduleSchema,
  UpdateScheduleBody,
} from '../schemas/schedules'

const route = routes('Schedules')
const reading: Guard = 'mq:read'
const changing: Guard = 'mq:publish'

const list = route('get', '/', reading, {
  summary: 'List recurring schedules',
  request: { query: ScheduleListQuery },
  responses: { 200: json(ScheduleListSchema, 'a page of schedules'), ...commonErrors },
})
const get = route('get', '/{id}', reading, {
  summary: 'Get a schedule',
  request: { params: ScheduleIdParam },
  responses: { 200: json(ScheduleSchema, 'the schedule'), ...commonErrors },
})
const update = route('put', '/{id}', changing, {
  summary: 'Change a schedule; its next run is worked out again',
  request: { params: ScheduleIdParam, body: jsonBody(UpdateScheduleBody) },
  responses: { 200: json(ScheduleSchema, 'the schedule'), ...commonErrors },
})
const remove = route('delete', '/{id}', changing, {
  summary: 'Delete a schedule',
  request: { params: ScheduleIdParam },
  responses: { 204: { description: 'deleted' }, ...commonErrors },
})
const pause = route('post', '/{id}/pause', changing, {
  summary: 'Pause a schedule',
  request: { params: ScheduleIdParam },
  responses: { 200: json(ScheduleSchema, 'the schedule'), ...commonErrors },
})
const resume = route('post', '/{id}/resume', changing, {
  summary: 'Resume a schedule; occurrences missed while paused are skipped',
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
