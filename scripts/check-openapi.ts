/**
 * `bun run check:openapi`: what a platform service in another language does with our OpenAPI
 * document. It starts a fresh service (as the README does), takes `/openapi.json`, lints it with
 * Redocly CLI's recommended rules (redocly.yaml), which must find 0 errors and 0 warnings, and
 * generates TypeScript types from it with openapi-typescript, which must typecheck with a use of
 * them beside.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startService } from './service'

const ROOT = join(import.meta.dir, '..')
const BIN = join(ROOT, 'node_modules', '.bin')

/** Compiles only when the generated types name the operations and bodies a client needs. */
const USE_OF_TYPES = `import type { operations, paths } from './types'

type PublishBody = paths['/api/v1/mq/publish']['post']['requestBody']['content']['application/json']
const body: PublishBody = { queue: 'orders', payload: { total: 42 } }
type Pulled = operations['pullMessages']['responses'][200]['content']['application/json']
const receipts = (pulled: Pulled): string[] => pulled.messages.map((m) => m.receipt)
export { body, receipts }
`

/** Redocly's telemetry and update check stay off: the checks talk to loopback only. */
const QUIET = {
  ...process.env,
  REDOCLY_TELEMETRY: 'off',
  REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true',
  DO_NOT_TRACK: '1',
}

/**
 * A node_modules of links to ours, but with `typescript` linked to TypeScript 5: the project
 * compiles with TypeScript 7, which has no JavaScript API, and openapi-typescript needs one.
 * Node, told to keep the links' paths, resolves openapi-typescript's imports from here.
 */
function modulesWithTypescript5(dir: string): string {
  const modules = join(dir, 'node_modules')
  mkdirSync(modules)
  for (const name of readdirSync(join(ROOT, 'node_modules'))) {
    if (name !== 'typescript') symlinkSync(join(ROOT, 'node_modules', name), join(modules, name))
  }
  symlinkSync(join(ROOT, 'node_modules', 'typescript5'), join(modules, 'typescript'))
  return modules
}

function run(label: string, cmd: string[], cwd: string) {
  const result = Bun.spawnSync(cmd, { cwd, env: QUIET, stdout: 'pipe', stderr: 'pipe' })
  console.log(`${label}: exit ${result.exitCode}`)
  return { ok: result.exitCode === 0, out: result.stdout.toString(), err: result.stderr.toString() }
}

async function main(): Promise<number> {
  const service = await startService('bun start', { root: ROOT })
  const work = mkdtempSync(join(tmpdir(), 'mq-openapi-'))
  let document: string
  try {
    document = await (await fetch(`http://127.0.0.1:${service.port}/openapi.json`)).text()
  } finally {
    await service.stop()
  }
  const file = join(work, 'openapi.json')
  writeFileSync(file, document)

  const lint = run(
    'redocly lint',
    [join(BIN, 'redocly'), 'lint', file, '--config', join(ROOT, 'redocly.yaml'), '--format=json'],
    ROOT
  )
  const report = JSON.parse(lint.out.slice(lint.out.indexOf('{'))) as {
    totals: { errors: number; warnings: number }
    problems: Array<{ ruleId: string; severity: string; message: string; location: unknown }>
  }
  for (const p of report.problems) {
    console.error(`${p.severity} ${p.ruleId}: ${p.message} ${JSON.stringify(p.location)}`)
  }
  const { errors, warnings } = report.totals
  console.log(`redocly lint: ${errors} errors, ${warnings} warnings`)

  const modules = modulesWithTypescript5(work)
  const generate = run(
    'openapi-typescript',
    [
      'node',
      '--preserve-symlinks',
      '--preserve-symlinks-main',
      join(modules, 'openapi-typescript', 'bin', 'cli.js'),
      file,
      '--output',
      join(work, 'types.ts'),
    ],
    work
  )
  if (!generate.ok) console.error(generate.err)
  writeFileSync(join(work, 'use.ts'), USE_OF_TYPES)
  const typecheck = run(
    'tsc on the generated types',
    [
      join(BIN, 'tsc'),
      '--ignoreConfig',
      '--noEmit',
      '--strict',
      '--target',
      'es2022',
      '--module',
      'esnext',
      '--moduleResolution',
      'bundler',
      join(work, 'types.ts'),
      join(work, 'use.ts'),
    ],
    ROOT
  )
  if (!typecheck.ok) console.error(typecheck.out, typecheck.err)
  rmSync(work, { recursive: true, force: true })

  const ok = errors === 0 && warnings === 0 && generate.ok && typecheck.ok
  console.log(`check:openapi: ${ok ? 'passed' : 'FAILED'}`)
  return ok ? 0 : 1
}

if (import.meta.main) process.exit(await main())
