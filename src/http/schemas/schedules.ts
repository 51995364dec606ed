import { z } from '@hono/zod-openapi'
import { isoDate, jsonValue, limitQuery, queueName, storedCount } from './common'
import { messageHeaders } from './publish'

const status = z.enum(['active', 'paused', 'completed'])

export const ScheduleSchema = z
  .object({
    id: z.uuid(),
    queue: z.string(),
    cron: z.string(),
    timezone: z.string(),
    payload: z.unknown(),
    headers: z.record(z.string(), z.string()),
    key: z.string().nullable(),
    status,
    nextRunAt: isoDate.nullable(),
    lastRunAt: isoDate.nullable(),
    runs: z.number().int(),
    maxRuns: z.number().int().nullable(),
    startAt: isoDate.nullable(),
    endAt: isoDate.nullable(),
    createdAt: isoDate,
  })
  .openapi('Schedule')

export const ScheduleListSchema = z
  .object({ items: z.array(ScheduleSchema), nextCursor: z.string().nullable() })
  .openapi('ScheduleList')

export const UpdateScheduleBody = z
  .strictObject({
    cron: z.string().min(9).max(200),
    timezone: z.string().min(1).max(64),
    payload: jsonValue.refine((v) => v !== undefined, 'payload may not be undefined'),
    headers: messageHeaders,
    key: z.string().min(1).max(500).nullable(),
    maxRuns: storedCount.nullable(),
    startAt: isoDate.nullable(),
    endAt: isoDate.nullable(),
  })
  .partial()
  .openapi('UpdateSchedule', { example: { cron: '0 9 * * 1-5', timezone: 'Europe/Paris' } })

export const ScheduleListQuery = z.object({
  queue: queueName.optional(),
  status: status.optional(),
  limit: limitQuery,
  cursor: z.string().max(400).optional(),
})

export const ScheduleIdParam = z.object({
  id: z.uuid().openapi({ param: { name: 'id', in: 'path' } }),
})
