import { describe, expect, test } from 'bun:test'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { decodeFields, encodeFields } from '../../src/streams/codec'
import { LEDGER_ROW_EXTRAS, STREAM_FIELDS } from '../../src/streams/fields'

const ROOT = join(import.meta.dir, '../..')
const SCRIPTS = join(ROOT, 'src/streams/scripts')
const NAMES = new Set<string>(Object.values(STREAM_FIELDS))

const luaFiles = () =>
  [
    ...readdirSync(SCRIPTS).map((f) => join(SCRIPTS, f)),
    ...readdirSync(join(SCRIPTS, 'includes')).map((f) => join(SCRIPTS, 'includes', f)),
  ].filter((f) => f.endsWith('.lua'))

/** Every entry field a script compares a name against, as `fields[i] == 'x'`. */
async function namesCompared(): Promise<Array<{ file: string; name: string }>> {
  const out: Array<{ file: string; name: string }> = []
  for (const file of luaFiles()) {
    const text = await Bun.file(file).text()
    for (const m of text.matchAll(/fields\[[^\]]+\]\s*==\s*'([^']*)'/g)) {
      out.push({ file: file.slice(SCRIPTS.length + 1), name: m[1]! })
    }
  }
  return out
}

describe('stream entry field names', () => {
  test('codec writes every field under its declared name and reads it back', () => {
    const message = {
      messageId: 'm',
      payloadText: '{}',
      encrypted: true,
      headers: { a: 'b' },
      key: 'k1',
      correlationId: 'c1',
      traceId: 't1',
      expiresAt: 5,
      publishedAt: 6,
    }
    const fields = encodeFields(message)
    const names = fields.filter((_, i) => i % 2 === 0)
    expect(new Set(names)).toEqual(NAMES)
    expect(decodeFields('7-0', fields)).toEqual(message)
  })

  test('the names the Lua scripts look for are the declared ones', async () => {
    const compared = await namesCompared()
    expect(compared.length).toBeGreaterThanOrEqual(4)
    for (const c of compared)
      expect({ ...c, declared: NAMES.has(c.name) }).toMatchObject({ declared: true })
    const byFile = Object.fromEntries(compared.map((c) => [c.file, c.name]))
    expect(byFile['pull.lua']).toBe(STREAM_FIELDS.expiresAt)
    expect(byFile['settle.lua']).toBe(STREAM_FIELDS.messageId)
    expect(byFile['removeEntries.lua']).toBe(STREAM_FIELDS.messageId)
    expect(byFile['includes/trimming.lua']).toBe(STREAM_FIELDS.messageId)
  })

  test("the ledger's SQL unpacks every field, and its row's own names clash with none", async () => {
    const source = await Bun.file(join(ROOT, 'src/db/ledger-repository.ts')).text()
    const recordset = source.match(/json_to_recordset\(\$\{rows\}::json\) as r\(([^)]*)\)/)
    expect(recordset).not.toBeNull()
    const columns = recordset![1]!.split(',').map((c) => c.trim().split(/\s+/)[0]!)
    for (const name of NAMES) expect(columns).toContain(name)
    for (const extra of LEDGER_ROW_EXTRAS) {
      expect(NAMES.has(extra)).toBe(false)
      expect(columns).toContain(extra)
    }
    const lua = await Bun.file(join(SCRIPTS, 'readLedgerRows.lua')).text()
    for (const extra of ['s', 'tenant_id', 'topic_id', 'partition_id']) {
      expect(lua).toContain(`${extra} = `)
    }
  })
})
