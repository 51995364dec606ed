import type { DomainContext, Principal } from '../domain/context'
import { MqError } from '../domain/errors'
import type { PublishInput } from '../domain/publish'
import type { Logger } from './logger'

/** The tenant's queue that receives its audit events, when the tenant has one. */
export const AUDIT_QUEUE = 'audit-logs'

/** The producer audit events are published as (for a queue with `allowedProducers`). */
export const AUDIT_PRINCIPAL: Principal = { kind: 'service', name: 'mq-audit' }

/** A management operation that succeeded, as the seed's `auditService.logOperation` names it. */
export interface AuditEvent {
  /** e.g. `queue.created`, `subscription.paused`. */
  operation: string
  /** e.g. `queue:orders`, `subscription:<id>`. */
  resource: string
  /** Names and counts only: never payloads, secrets or header values. */
  details?: Record<string, unknown>
}

export interface AuditSinkDeps {
  /** Publishes to one of the tenant's queues (the publishing verb). */
  publish(ctx: DomainContext, queue: string, input: PublishInput): Promise<unknown>
  /** Where events are also POSTed as JSON (AUDIT_SERVICE_URL). */
  url?: string
  /** Sent as `X-Service-Token` so the audit service knows the caller. */
  serviceToken?: string
  logger: Logger
  /** How long the audit service may take to answer. */
  timeoutMs?: number
}

/**
 * Emits audit events of management operations to the tenant's `audit-logs` queue and to the
 * audit service. Fire and forget: the request that caused the event neither waits for nor
 * fails with it; a failure is logged. The queue is not created for the event: a tenant (or
 * the audit service, through the internal API) opts in by having an `audit-logs` queue, so
 * no tenant finds a queue it did not ask for counted against its quota.
 */
export class AuditSink {
  private readonly inflight = new Set<Promise<void>>()

  constructor(private readonly deps: AuditSinkDeps) {}

  /** Emits `event` on behalf of `ctx`'s tenant and caller; returns at once. */
  record(ctx: DomainContext, event: AuditEvent): void {
    const body = {
      ...event,
      tenantId: ctx.tenantId,
      actor: ctx.principal,
      requestId: ctx.requestId,
      occurredAt: new Date().toISOString(),
    }
    this.track(this.toQueue(ctx, body))
    if (this.deps.url) this.track(this.toService(this.deps.url, body))
  }

  /** Resolves once every event recorded so far has been delivered or given up on. */
  async settled(): Promise<void> {
    await Promise.all(this.inflight)
  }

  private track(p: Promise<void>): void {
    this.inflight.add(p)
    void p.finally(() => this.inflight.delete(p))
  }

  private async toQueue(ctx: DomainContext, body: AuditEvent & { tenantId: string }) {
    try {
      await this.deps.publish({ ...ctx, principal: AUDIT_PRINCIPAL }, AUDIT_QUEUE, {
        payload: body,
        headers: { 'x-mq-audit-operation': body.operation },
      })
    } catch (err) {
      if (err instanceof MqError && err.code === 'MQ_QUEUE_NOT_FOUND') return
      this.deps.logger.warn(
        { err: (err as Error).message, tenantId: ctx.tenantId, operation: body.operation },
        'audit event not published to audit-logs'
      )
    }
  }

  private async toService(url: string, body: AuditEvent & { tenantId: string }) {
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-tenant-id': body.tenantId,
          ...(this.deps.serviceToken ? { 'x-service-token': this.deps.serviceToken } : {}),
        },
        body: JSON.stringify(body),
        redirect: 'manual',
        signal: AbortSignal.timeout(this.deps.timeoutMs ?? 2000),
      })
      await res.body?.cancel()
      if (!res.ok) throw new Error(`audit service answered ${res.status}`)
    } catch (err) {
      this.deps.logger.warn(
        { err: (err as Error).message, tenantId: body.tenantId, operation: body.operation },
        'audit event not sent to the audit service'
      )
    }
  }
}
