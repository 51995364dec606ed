import { defineConfig } from 'drizzle-kit'

// Only `generate` is used: migrations are applied by the service itself (`src/db/client.ts`).
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/db/schema.ts',
  out: './drizzle',
})
