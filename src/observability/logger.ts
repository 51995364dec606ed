import pino from 'pino'

export type Logger = pino.Logger

/**
 * Structured JSON logs on stdout, or on `destination` (tests read it). Payloads and secrets
 * never go in; the redaction list is a second line of defence for headers that could carry
 * them.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service: 'message-queue-service' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: ['authorization', 'x-service-token', '*.authorization', '*.x-service-token'],
  }
  return destination ? pino(options, destination) : pino(options)
}
