/**
 * The console's browser code (src/console/main.ts) as one minified script. Imported `with
 * { type: 'macro' }`, so Bun runs it while transpiling the importer: `bun build --compile` puts
 * the bundle in the binary as a string, and `bun start` or `bun test` bundle it at load (a
 * fraction of a second). `Bun.build` cannot run inside a macro (the bundler would wait for
 * itself), so it runs `bun build`, as Bun's own error message advises.
 */
export function bundleConsole(): string {
  const entry = `${import.meta.dir}/../console/main.ts`
  const result = Bun.spawnSync(
    [process.execPath, 'build', entry, '--minify', '--target=browser', '--format=esm'],
    { stdout: 'pipe', stderr: 'pipe' }
  )
  if (!result.success) throw new Error(`bundling the console failed:\n${result.stderr}`)
  return result.stdout.toString()
}
