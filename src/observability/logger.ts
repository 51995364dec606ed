import { write, writeSync } from 'node:fs'
import pino from 'pino'
import { dbErrorFields, postgresError } from '../db/sql-state'

export type Logger = pino.Logger

/** Fields that could carry a credential if a header ever reached a log line. */
const REDACTED = ['authorization', 'x-service-token', '*.authorization', '*.x-service-token']

/** drizzle's message for a failed statement: the statement and every parameter follow. */
const FAILED_QUERY = 'Failed query:'

/**
 * What a log line may say of an error. A database error (drizzle's or PostgreSQL's) becomes
 * its SQLSTATE, constraint and table: drizzle's message is the whole statement with its
 * parameters (payloads among them), and PostgreSQL's may quote a value. Any other error keeps
 * its message; any other value is left as it is.
 */
export function loggableError(err: unknown): unknown {
  if (typeof err === 'string') {
    return err.includes(FAILED_QUERY) ? 'database statement failed (statement withheld)' : err
  }
  if (!(err instanceof Error)) return err
  if (postgresError(err) || err.message.includes(FAILED_QUERY)) return dbErrorFields(err)
  return err
}

const baseOptions = (level: string): pino.LoggerOptions => ({
  level,
  base: { service: 'message-queue-service' },
  timestamp: pino.stdTimeFunctions.isoTime,
  // The one place every line passes: whichever call site logs a database error as `err`,
  // no statement or parameter reaches the log.
  formatters: {
    log: (fields) => ('err' in fields ? { ...fields, err: loggableError(fields.err) } : fields),
  },
})

/** How long a write the descriptor refused for now (a full pipe) waits to be tried again. */
const RETRY_MS = 100

const retryable = (err: NodeJS.ErrnoException) => err.code === 'EAGAIN' || err.code === 'EBUSY'

/**
 * Lines for one file descriptor, written asynchronously: a line is appended to a list, and the
 * list goes out in one write when the write before it is done. pino's own asynchronous
 * destination (sonic-boom) measured its buffer anew for every line appended to it, and the
 * buffer is a string grown by concatenation, so each measure copied it: on the publish path
 * that was as much as the rest of the log line.
 */
class LineWriter implements pino.DestinationStream {
  private lines: string[] = []
  private writing = false
  private stopped = false

  constructor(private readonly fd: number) {
    // Whatever is still waiting when the process exits is written before it does.
    process.on('exit', () => this.flushSync())
  }

  write(line: string): void {
    if (this.stopped) return
    this.lines.push(line)
    if (!this.writing) this.next()
  }

  private next(): void {
    if (this.lines.length === 0) {
      this.writing = false
      return
    }
    const chunk = this.lines.length === 1 ? (this.lines[0] as string) : this.lines.join('')
    this.lines = []
    this.writing = true
    this.send(chunk)
  }

  private send(chunk: string | Buffer): void {
    const done = (err: NodeJS.ErrnoException | null, written: number) => {
      if (err) {
        if (retryable(err)) {
          setTimeout(() => this.send(chunk), RETRY_MS)
          return
        }
        // A closed stdout (EPIPE) or a failing one: logging stops, the service does not.
        this.stopped = true
        this.lines = []
        this.writing = false
        return
      }
      const length = typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length
      if (written >= length) this.next()
      else this.send(Buffer.from(chunk).subarray(written))
    }
    if (typeof chunk === 'string') write(this.fd, chunk, null, 'utf8', done)
    else write(this.fd, chunk, 0, chunk.length, null, done)
  }

  /** Writes the lines not yet handed to a write; the one in flight finishes on its own. */
  flushSync(): void {
    if (this.stopped || this.lines.length === 0) return
    let rest = Buffer.from(this.lines.join(''))
    this.lines = []
    while (rest.length > 0) {
      try {
        rest = rest.subarray(writeSync(this.fd, rest))
      } catch (err) {
        if (!retryable(err as NodeJS.ErrnoException)) return
        Bun.sleepSync(RETRY_MS)
      }
    }
  }
}

let stdout: LineWriter | undefined

function sharedStdout(): LineWriter {
  stdout ??= new LineWriter(1)
  return stdout
}

/**
 * Structured JSON logs on stdout, or on `destination` (tests read it). Payloads and secrets
 * never go in; the redaction list is a second line of defence for headers that could carry
 * them. Stdout is written asynchronously: a synchronous write per line was a system call per
 * request on the publish path. Lines written while one write is in flight go out together,
 * and whatever is still waiting is written when the process exits. Every logger on stdout
 * shares one writer, so lines keep their order.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  const options = { ...baseOptions(level), redact: REDACTED }
  return pino(options, destination ?? sharedStdout())
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
