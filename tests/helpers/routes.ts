/** Anything with Hono's route table. */
export interface Routed {
  routes: Array<{ method: string; path: string }>
}

/**
 * `METHOD /path` of every handler an app mounts, as the matrix and fuzz tests enumerate them;
 * middleware is mounted as `ALL` and left out.
 */
export function mountedRoutes(app: Routed): string[] {
  return [
    ...new Set(app.routes.filter((r) => r.method !== 'ALL').map((r) => `${r.method} ${r.path}`)),
  ]
}
