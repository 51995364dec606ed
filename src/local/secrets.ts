import { randomBytes } from 'node:crypto'
import { linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

function readSecret(file: string): string {
  const secret = readFileSync(file, 'utf8').trim()
  if (!secret) throw new Error(`${file} is empty: delete it and a new secret will be made`)
  return secret
}

/**
 * A secret for the zero-set-up local run, made once and kept in `<dataDir>/secrets/<name>`
 * (mode 0600) so that the server and `bun run token` agree across restarts. Production sets
 * the corresponding variable instead (the config refuses to start without it there).
 * @throws Error when the stored secret is empty.
 */
export function localSecret(dataDir: string, name: string): string {
  const dir = join(dataDir, 'secrets')
  const file = join(dir, name)
  try {
    return readSecret(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  // Processes starting together on a fresh data dir (api and worker, or the server and
  // `bun run token`) must all end up with the same secret: the file appears complete in one
  // step by linking a fully written temporary file, and whoever loses the race reads the
  // winner's.
  const temp = join(dir, `.${name}.${process.pid}.${randomBytes(4).toString('hex')}`)
  writeFileSync(temp, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 })
  try {
    linkSync(temp, file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  } finally {
    rmSync(temp, { force: true })
  }
  return readSecret(file)
}
