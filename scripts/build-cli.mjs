// Build step after tsc: ships the .sql files next to the compiled modules that
// read them, and bundles the CLI (bin/tenantctl.js runs the bundle).
//
// Why a bundle: a CLI pays for every module file it opens at start-up. One
// file for the program's definition (commander, the subcommands' flags) and
// chunks loaded only when a command runs keep `--version` and `--help` within
// a few ms of `node -e 0`, and a cache hit from loading the registry drivers.
// The drivers (ioredis, pg, PGlite, supabase-js) stay outside the bundle:
// they load lazily, only in the commands that need them.
import { cpSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bundle = path.join(root, 'dist', 'cli-bundle');

const sqlFiles = (dir) =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sqlFiles(path.join(dir, e.name)) : e.name.endsWith('.sql') ? [path.join(dir, e.name)] : [],
  );

rmSync(bundle, { recursive: true, force: true });
await build({
  entryPoints: [path.join(root, 'dist', 'cli', 'main.js')],
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  outdir: bundle,
  chunkNames: 'chunks/[name]-[hash]',
  // ioredis is bundled (into the chunk of the Redis adapter): CommonJS resolution of its dozen files cost more than the rest of a cache hit.
  external: ['pg', '@electric-sql/pglite', '@supabase/supabase-js', 'ws'],
  // CommonJS dependencies inside an ES module bundle still call require().
  banner: { js: "import { createRequire as __tenantctlRequire } from 'node:module'; const require = __tenantctlRequire(import.meta.url);" },
  logLevel: 'warning',
});

// Modules find their .sql files beside themselves (new URL('./x.sql', import.meta.url)):
// beside the compiled module, and beside every bundle file.
for (const file of sqlFiles(path.join(root, 'src'))) {
  const rel = path.relative(path.join(root, 'src'), file);
  for (const dir of [path.join(root, 'dist', path.dirname(rel)), bundle, path.join(bundle, 'chunks')]) {
    mkdirSync(dir, { recursive: true });
    cpSync(file, path.join(dir, path.basename(file)));
  }
}
