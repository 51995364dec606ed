import { resolve } from 'node:path'
import { type MigrationMeta, readMigrationFiles } from 'drizzle-orm/migrator'

/**
 * The drizzle-kit migrations of the repository's `drizzle/`, read as drizzle's migrator reads a
 * folder. Imported `with { type: 'macro' }`, so Bun runs it while transpiling the importer:
 * `bun build --compile` puts the migrations in the binary (as it does the Lua scripts), and a
 * new migration is picked up without a list to keep.
 */
export function bundleMigrations(): MigrationMeta[] {
  return readMigrationFiles({ migrationsFolder: resolve(import.meta.dir, '../../drizzle') })
}
