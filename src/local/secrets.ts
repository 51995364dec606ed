import { randomBytes } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/**
 * A secret for the zero-set-up local run, made once and kept in `<dataDir>/secrets/<name>`
 * (mode 0600) so that the server and `bun run token` agree across restarts. Production sets
 * the corresponding variable instead (the config refuses to start without it there).
 */
export function localSecret(dataDir: string, name: string): string {
  const dir = join(dataDir, 'secrets')
  const file = join(dir, name)
  if (existsSync(file)) return readFileSync(file, 'utf8').trim()
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const secret = randomBytes(32).toString('base64url')
  writeFileSync(file, `${secret}\n`, { mode: 0o600, flag: 'wx' })
  chmodSync(file, 0o600)
  return secret
}
