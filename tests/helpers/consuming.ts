import { expect } from 'bun:test'
import { PullResultSchema } from '../../src/http/schemas/consume'
import { BASE as B, call } from './api'
import type { testApp } from './harness'

/** Calls to the consuming routes of the queue `orders`, as the HTTP tests make them. */
type App = Awaited<ReturnType<typeof testApp>>

export interface Delivery {
  receipt: string
  messageId: string
  payload: unknown
  headers: Record<string, string>
  deliveryCount: number
  partition: number
}

/**
 * Subscribes to `orders` (a pull subscription from the earliest message, as `body` overrides)
 * and expects 201. @returns its id.
 */
export async function subscribe(
  app: App,
  tenant: string,
  body: Record<string, unknown>
): Promise<string> {
  const res = await call(app, 'POST', `${B}/subscriptions`, {
    tenant,
    body: {
      queue: 'orders',
      subscriptionType: 'redis_consumer',
      offsetResetPolicy: 'earliest',
      ...body,
    },
  })
  expect(res.status).toBe(201)
  return res.body.id as string
}

/** Publishes one message per payload to `orders`, each with `extra`. @returns their ids. */
export async function publish(
  app: App,
  tenant: string,
  payloads: unknown[],
  extra: Record<string, unknown> = {}
): Promise<string[]> {
  const res = await call(app, 'POST', `${B}/publish/batch`, {
    tenant,
    body: { queue: 'orders', messages: payloads.map((payload) => ({ payload, ...extra })) },
  })
  expect(res.status).toBe(201)
  return res.body.results.map((r: { messageId: string }) => r.messageId)
}

/** Pulls (100 at most unless `body` says) and expects 200. */
export async function pull(
  app: App,
  tenant: string,
  sub: string,
  body: Record<string, unknown> = {}
): Promise<Delivery[]> {
  const res = await call(app, 'POST', `${B}/subscriptions/${sub}/pull`, {
    tenant,
    body: { max: 100, ...body },
  })
  expect(res.status).toBe(200)
  return PullResultSchema.parse(res.body).messages as Delivery[]
}

/** @returns how many of `receipts` acknowledged. */
export const ack = async (app: App, tenant: string, sub: string, receipts: string[]) =>
  (await call(app, 'POST', `${B}/subscriptions/${sub}/ack`, { tenant, body: { receipts } })).body
    .acked as number
