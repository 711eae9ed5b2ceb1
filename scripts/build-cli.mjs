// Build step after tsc: ships the .sql files next to the compiled modules that
// read them, and bundles the CLI (bin/tenantctl.js runs the bundle).
//
// Why one CommonJS file: a CLI's start-up is mostly loading and compiling its
// code. Node 20 pays per ES module (resolve, load, link), and a script (not a
// module) can be compiled with V8's code cache (src/cli/load-bundle.ts): a
// cache-hit get-config costs ~40% fewer instructions above `node -e 0` than
// with the ES module chunks this replaced (measured with callgrind).
// The registry drivers (pg, PGlite, supabase-js, ws) stay outside the bundle
// and load with require() only in the commands that need them (each ships a
// CommonJS build); ioredis, commander, js-yaml and chalk are inside.
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bundle = path.join(root, 'dist', 'cli-bundle');

const sqlFiles = (dir) =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sqlFiles(path.join(dir, e.name)) : e.name.endsWith('.sql') ? [path.join(dir, e.name)] : [],
  );

/**
 * Node modules that bundled dependencies require when they load but use in
 * one rare path, required on first use instead:
 * - commander: node:child_process, for executable subcommands (tenantctl has
 *   none); it brings dgram and more;
 * - ioredis: tls, for a TLS connection only.
 * Together ~4% of a cache-hit get-config's instructions above `node -e 0`.
 * If a dependency changes one of these lines, the build fails here rather
 * than quietly going back to the eager require.
 */
const LAZY_REQUIRES = [
  { file: /[\\/]commander[\\/]lib[\\/]command\.js$/, eager: "const childProcess = require('node:child_process');", lazy: "const childProcess = { get spawn() { return require('node:child_process').spawn; } };" },
  { file: /[\\/]ioredis[\\/]built[\\/]connectors[\\/]StandaloneConnector\.js$/, eager: 'const tls_1 = require("tls");', lazy: 'const tls_1 = { get connect() { return require("tls").connect; } };' },
  { file: /[\\/]ioredis[\\/]built[\\/]connectors[\\/]SentinelConnector[\\/]index\.js$/, eager: 'const tls_1 = require("tls");', lazy: 'const tls_1 = { get connect() { return require("tls").connect; } };' },
];
const lazyRequires = {
  name: 'lazy-requires',
  setup(b) {
    for (const { file, eager, lazy } of LAZY_REQUIRES) {
      b.onLoad({ filter: file }, (args) => {
        const text = readFileSync(args.path, 'utf8');
        if (!text.includes(eager)) throw new Error(`${args.path}: no '${eager}' to make lazy (the dependency changed: update scripts/build-cli.mjs)`);
        return { contents: text.replace(eager, lazy), loader: 'js' };
      });
    }
  },
};

/** What both bundles (the CLI and its launcher) are: one CommonJS file each, for this Node. */
const COMMONJS_FOR_NODE = {
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  // Modules find their .sql files beside themselves (new URL('./x.sql', import.meta.url)): beside the bundle.
  define: { 'import.meta.url': '__tenantctl_bundle_url' },
  // Strict first, as the ES modules it is built from were: a line before esbuild's own "use strict" would void it.
  banner: { js: "'use strict';\nconst __tenantctl_bundle_url = require('node:url').pathToFileURL(__filename).href;" },
  logLevel: 'warning',
};

rmSync(bundle, { recursive: true, force: true });
await build({
  ...COMMONJS_FOR_NODE,
  plugins: [lazyRequires],
  entryPoints: [path.join(root, 'dist', 'cli', 'main.js')],
  outfile: path.join(bundle, 'tenantctl.cjs'),
  external: ['pg', '@electric-sql/pglite', '@supabase/supabase-js', 'ws'],
  // A dynamic import() in a vm.Script needs a loader callback; require() of the drivers' CommonJS builds does not.
  supported: { 'dynamic-import': false },
});

// ASCII only (esbuild escapes strings; a comment can still carry a µ or an arrow): the launcher reads an ASCII
// bundle as Latin-1, ~1 ms faster than UTF-8 (src/cli/load-bundle.ts). Fail here rather than quietly slower.
{
  const text = readFileSync(path.join(bundle, 'tenantctl.cjs'), 'utf8');
  const at = text.search(/[^\x00-\x7f]/);
  if (at >= 0) {
    const line = text.slice(0, at).split('\n').length;
    throw new Error(`dist/cli-bundle/tenantctl.cjs:${line}: a character outside ASCII (${JSON.stringify(text[at])}): keep the sources' comments ASCII (\`us\`, not \`µs\`)`);
  }
}

// The launcher (bin/tenantctl.js requires it): CommonJS too, so that no command sets up Node's ES module loader.
await build({ ...COMMONJS_FOR_NODE, entryPoints: [path.join(root, 'dist', 'cli', 'launch.js')], outfile: path.join(bundle, 'launcher.cjs') });

// Beside the compiled module, and beside the bundle.
for (const file of sqlFiles(path.join(root, 'src'))) {
  const rel = path.relative(path.join(root, 'src'), file);
  for (const dir of [path.join(root, 'dist', path.dirname(rel)), bundle]) {
    mkdirSync(dir, { recursive: true });
    cpSync(file, path.join(dir, path.basename(file)));
  }
}
