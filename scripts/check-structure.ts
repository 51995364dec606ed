/**
 * `bun run check:structure`: the shape rules the code base holds itself to (issue 22).
 *
 * - no import cycle in src/ (type-only and dynamic imports count: a cycle of types still ties
 *   two modules' designs together);
 * - no src/ file over 400 lines, apart from the files named in EXEMPT_FILES;
 * - no function over 80 lines, apart from the ones named in EXEMPT_FUNCTIONS;
 * - `duplicates` (the team's tool, where this machine has it) finds no pair in src/ that is not
 *   boilerplate.
 *
 * Prints every breach and exits 1 when there is one. `--report` prints them and exits 0, to
 * see how far a tree is from the rules.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { parseSync } from 'oxc-parser'

const ROOT = resolve(import.meta.dir, '..')
const SRC = join(ROOT, 'src')
const MAX_FILE_LINES = 400
const MAX_FUNCTION_LINES = 80

/** Files allowed past MAX_FILE_LINES, each with the reason (generated, bundled, a table). */
const EXEMPT_FILES: Record<string, string> = {}
/** `file:function` allowed past MAX_FUNCTION_LINES: declarative tables only. */
const EXEMPT_FUNCTIONS: Record<string, string> = {}
/**
 * Pairs of files (under src/) whose "shape" match `duplicates` reports is boilerplate the tool
 * does not recognise as such, each with the reason. Only shape matches (alike but for names)
 * are accepted: a pair of identical lines between them still fails.
 */
const ACCEPTED_SHAPES: Array<[string, string, string]> = [
  [
    'http/routes/consume.ts',
    'http/routes/queues.ts',
    "the end of an import list, `const route = routes(tag)` and a route's first lines",
  ],
  [
    'http/routes/messages.ts',
    'http/routes/queues.ts',
    "route declarations in the route helper's one form: method, path, scope, summary",
  ],
  [
    'streams/scripts/promoteDue.lua',
    'streams/scripts/pull.lua',
    'the `local x = KEYS[n]` / `tonumber(ARGV[n])` lines naming each script its own arguments',
  ],
  [
    'streams/scripts/publishMessages.lua',
    'streams/scripts/removeConsumer.lua',
    'the `local x = KEYS[n]` / `ARGV[n]` lines naming each script its own arguments',
  ],
]

interface Node {
  type: string
  start: number
  end: number
  [key: string]: unknown
}

function sourceFiles(dir: string): string[] {
  const out: string[] = []
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path))
    else if (/\.tsx?$/.test(name) && !name.endsWith('.d.ts')) out.push(path)
  }
  return out
}

function* walk(node: unknown): Generator<Node> {
  if (Array.isArray(node)) {
    for (const child of node) yield* walk(child)
    return
  }
  if (node === null || typeof node !== 'object') return
  if (typeof (node as Node).type === 'string') yield node as Node
  for (const value of Object.values(node))
    if (value && typeof value === 'object') yield* walk(value)
}

function resolveImport(from: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined
  const base = resolve(dirname(from), specifier)
  for (const candidate of [base, `${base}.ts`, `${base}.tsx`, join(base, 'index.ts')]) {
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate
  }
  return undefined
}

/** 1-based line of a character offset. */
function lineAt(text: string, offset: number): number {
  let line = 1
  for (let i = 0; i < offset; i++) if (text.charCodeAt(i) === 10) line++
  return line
}

function functionName(node: Node, parent: Node | undefined, line: number): string {
  const id = node.id as { name?: string } | null | undefined
  if (id?.name) return id.name
  const key = parent?.key as { name?: string } | undefined
  if (key?.name) return key.name
  const target = parent?.id as { name?: string } | undefined
  if (target?.name) return target.name
  return `<anonymous@${line}>`
}

interface Breach {
  rule: string
  where: string
  detail: string
}

function analyse(files: string[]): { breaches: Breach[]; graph: Map<string, Set<string>> } {
  const breaches: Breach[] = []
  const graph = new Map<string, Set<string>>()
  for (const file of files) {
    const rel = relative(ROOT, file)
    const text = readFileSync(file, 'utf8')
    const lines = text.split('\n').length
    if (lines > MAX_FILE_LINES && !EXEMPT_FILES[rel]) {
      breaches.push({
        rule: 'file length',
        where: rel,
        detail: `${lines} lines > ${MAX_FILE_LINES}`,
      })
    }
    const parsed = parseSync(file, text)
    const edges = new Set<string>()
    graph.set(file, edges)
    const parents = new Map<Node, Node>()
    for (const node of walk(parsed.program)) {
      for (const value of Object.values(node)) {
        if (Array.isArray(value)) {
          for (const child of value)
            if (child && typeof child === 'object') parents.set(child, node)
        } else if (value && typeof value === 'object') parents.set(value as Node, node)
      }
      const source =
        node.type === 'ImportDeclaration' ||
        node.type === 'ExportNamedDeclaration' ||
        node.type === 'ExportAllDeclaration' ||
        node.type === 'ImportExpression'
          ? (node.source as { value?: unknown } | null)?.value
          : undefined
      if (typeof source === 'string') {
        const target = resolveImport(file, source)
        if (target) edges.add(target)
      }
      if (
        node.type === 'FunctionDeclaration' ||
        node.type === 'FunctionExpression' ||
        node.type === 'ArrowFunctionExpression'
      ) {
        const first = lineAt(text, node.start)
        const span = lineAt(text, node.end) - first + 1
        if (span <= MAX_FUNCTION_LINES) continue
        const name = functionName(node, parents.get(node), first)
        if (EXEMPT_FUNCTIONS[`${rel}:${name}`]) continue
        breaches.push({
          rule: 'function length',
          where: `${rel}:${first}`,
          detail: `${name}: ${span} lines > ${MAX_FUNCTION_LINES}`,
        })
      }
    }
  }
  return { breaches, graph }
}

/** Tarjan's strongly connected components: every component of two or more files is a cycle. */
function cycles(graph: Map<string, Set<string>>): string[][] {
  let index = 0
  const indices = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const found: string[][] = []
  const visit = (v: string) => {
    indices.set(v, index)
    low.set(v, index)
    index++
    stack.push(v)
    onStack.add(v)
    for (const w of graph.get(v) ?? []) {
      if (!indices.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, indices.get(w)!))
    }
    if (low.get(v) === indices.get(v)) {
      const component: string[] = []
      let w: string
      do {
        w = stack.pop()!
        onStack.delete(w)
        component.push(w)
      } while (w !== v)
      if (component.length > 1 || graph.get(v)?.has(v)) found.push(component)
    }
  }
  for (const v of graph.keys()) if (!indices.has(v)) visit(v)
  return found
}

/** Non-boilerplate pairs `duplicates` reports in src/, or undefined where the tool is absent. */
function duplicatePairs(): string[] | undefined {
  const run = spawnSync('duplicates', ['--repo', SRC, '--most', '200', '--seconds', '60'], {
    encoding: 'utf8',
  })
  if (run.error) return undefined
  return run.stdout
    .split('\n')
    .filter((line) => /^D\d+ /.test(line) && !line.includes('boilerplate') && !accepted(line))
}

/** Whether a `duplicates` row is a shape match between a pair in ACCEPTED_SHAPES. */
function accepted(row: string): boolean {
  const match = /^D\d+ (\S+):\d+-\d+ ~ (\S+):\d+-\d+ shape\b/.exec(row)
  if (!match) return false
  const pair = [match[1], match[2]].sort().join(' ')
  return ACCEPTED_SHAPES.some(([a, b]) => [a, b].sort().join(' ') === pair)
}

const { breaches, graph } = analyse(sourceFiles(SRC))
for (const component of cycles(graph)) {
  breaches.push({
    rule: 'import cycle',
    where: component.map((f) => relative(ROOT, f)).join(' ↔ '),
    detail: `${component.length} files`,
  })
}
const pairs = duplicatePairs()
if (pairs === undefined) console.log('duplicates: not on this machine, skipped')
else for (const pair of pairs) breaches.push({ rule: 'duplicate', where: pair, detail: '' })

for (const b of breaches) console.log(`${b.rule}: ${b.where}${b.detail ? ` (${b.detail})` : ''}`)
console.log(`structure: ${breaches.length} breach${breaches.length === 1 ? '' : 'es'}`)
if (breaches.length > 0 && !process.argv.includes('--report')) process.exit(1)
