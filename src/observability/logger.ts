import pino from 'pino'

export type Logger = pino.Logger

/** Fields that could carry a credential if a header ever reached a log line. */
const REDACTED = ['authorization', 'x-service-token', '*.authorization', '*.x-service-token']

const baseOptions = (level: string): pino.LoggerOptions => ({
  level,
  base: { service: 'message-queue-service' },
  timestamp: pino.stdTimeFunctions.isoTime,
})

/**
 * Structured JSON logs on stdout, or on `destination` (tests read it). Payloads and secrets
 * never go in; the redaction list is a second line of defence for headers that could carry
 * them. Stdout is written asynchronously: a synchronous write per line was a system call per
 * request on the publish path. Lines written while one write is in flight go out together,
 * and whatever is still buffered is written when the process exits.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  const options = { ...baseOptions(level), redact: REDACTED }
  return pino(options, destination ?? pino.destination({ dest: 1, sync: false }))
}

/**
 * A logger on `logger`'s destination and level without redaction, for lines whose fields are
 * fixed and hold no header (the per-request line): redaction walks every line it is given,
 * which on the hot path cost more than writing the line.
 */
export function unredacted(logger: Logger): Logger {
  const stream = (logger as unknown as Record<symbol, pino.DestinationStream>)[
    pino.symbols.streamSym
  ]
  return pino(baseOptions(logger.level), stream)
}
