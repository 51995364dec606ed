import pino from 'pino'

export type Logger = pino.Logger

/**
 * Structured JSON logs on stdout. Payloads and secrets never go in; the redaction list is a
 * second line of defence for headers that could carry them.
 */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'message-queue-service' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: ['authorization', 'x-service-token', '*.authorization', '*.x-service-token'],
  })
}
