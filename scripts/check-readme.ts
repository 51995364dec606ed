/**
 * `bun run check:readme`: runs the README's Quick start and walkthrough as a user pastes them.
 * The Quick start block with `bun start` starts a fresh service (free port, temp DATA_DIR); the
 * shell blocks from "## Walkthrough" up to the next "## " section then run in one bash, in order,
 * with `set -euo pipefail`. Every command must exit 0 and every answer curl prints must be JSON:
 * curl runs with --fail-with-body, so an error status fails the check too. The test block of the
 * Quick start is CI's own step and is not run here. The README's ports (3010 for the service,
 * 4000 for the webhook receiver) are swapped for free ones.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, signalGroup, startService } from './service'

const ROOT = join(import.meta.dir, '..')

/** The ```sh blocks between the heading `from` and the next heading of the same level. */
export function shellBlocks(markdown: string, from: string): string[] {
  const start = markdown.indexOf(`\n${from}\n`)
  if (start < 0) throw new Error(`README has no "${from}" section`)
  const level = from.split(' ')[0]
  const rest = markdown.slice(start + from.length + 2)
  const end = rest.search(new RegExp(`^${level} `, 'm'))
  const section = end < 0 ? rest : rest.slice(0, end)
  return [...section.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1] ?? '')
}

/** Records every curl answer (NUL-separated) and fails on an error status. */
const PRELUDE = `set -euo pipefail
curl() {
  local body
  body=$(command curl --fail-with-body --show-error "$@") || { printf '%s\\n' "$body" >&2; return 1; }
  printf '%s\\0' "$body" >> "$ANSWERS"
  printf '%s\\n' "$body"
}
`

async function main(): Promise<number> {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const quick = shellBlocks(readme, '## Quick start')
  const start = quick.find((b) => /\bbun start\b/.test(b))
  if (!start) throw new Error('the Quick start has no block with `bun start`')
  const walkthrough = shellBlocks(readme, '## Walkthrough')
  if (walkthrough.length === 0) throw new Error('the Walkthrough has no shell blocks')

  const service = await startService(start.trim(), { root: ROOT })
  const work = mkdtempSync(join(tmpdir(), 'mq-readme-'))
  const answers = join(work, 'answers')
  writeFileSync(answers, '')
  const receiverPort = freePort()
  const script =
    PRELUDE +
    walkthrough
      .join('\n')
      .replaceAll('127.0.0.1:3010', `127.0.0.1:${service.port}`)
      .replace(/\b4000\b/g, String(receiverPort))
  writeFileSync(join(work, 'walkthrough.sh'), script)
  console.log(
    `service on port ${service.port}; running ${walkthrough.length} walkthrough blocks (${work}/walkthrough.sh)`
  )
  const shell = Bun.spawn(['bash', join(work, 'walkthrough.sh')], {
    cwd: ROOT,
    env: { ...process.env, ANSWERS: answers, DATA_DIR: service.dataDir },
    stdin: 'ignore',
    stdout: 'inherit',
    stderr: 'inherit',
    detached: true,
  })
  const timer = setTimeout(() => signalGroup(shell.pid, 'SIGKILL'), 180_000)
  const code = await shell.exited
  clearTimeout(timer)
  signalGroup(shell.pid, 'SIGTERM') // a background process the walkthrough left running
  await service.stop()

  const bodies = readFileSync(answers, 'utf8').split('\0').slice(0, -1)
  const unparsed = bodies.filter((body) => {
    try {
      JSON.parse(body)
      return false
    } catch {
      return true
    }
  })
  rmSync(work, { recursive: true, force: true })
  for (const body of unparsed) console.error(`not JSON: ${body.slice(0, 300)}`)
  const ok = code === 0 && unparsed.length === 0 && bodies.length > 0
  console.log(
    `check:readme: walkthrough exit code ${code}, ${bodies.length} answers, ${unparsed.length} not JSON: ${ok ? 'passed' : 'FAILED'}`
  )
  return ok ? 0 : 1
}

if (import.meta.main) process.exit(await main())
