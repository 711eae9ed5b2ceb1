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
import { createHash } from 'node:crypto';
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
 * Edits to bundled dependencies, each for start-up time; the build fails if
 * one's text is not found (the dependency changed: look again), rather than
 * quietly going without it.
 *
 * Node modules that bundled dependencies require when they load but use in
 * one rare path, required on first use instead:
 * - commander: node:child_process, for executable subcommands (tenantctl has
 *   none); it brings dgram and more;
 * - ioredis: tls, for a TLS connection only; crypto, for a Lua script's SHA
 *   (the tool's own modules load it on first use too: src/node-crypto.ts);
 *   dns, for a Cluster given host names;
 * - redis-errors: assert, for a reply parser error's arguments.
 * Together ~15% of a cache-hit get-config's instructions above `node -e 0`.
 *
 * ioredis adds ~600 command methods to its Commander class's prototype one by
 * one. V8 keeps a class prototype in fast mode and copies its descriptors on
 * every added property, so this costs O(n^2): 20-40 ms of every command here
 * (a micro-benchmark: 150 methods 2.6 ms, 600 43 ms, 1,200 115 ms). A
 * property added and deleted first puts the prototype in dictionary mode,
 * where each addition is O(1) (600: 1.4 ms); V8 makes it fast again, once,
 * when it is first used as a prototype. The methods are the same.
 */
const DEPENDENCY_PATCHES = [
  { file: /[\\/]commander[\\/]lib[\\/]command\.js$/, edits: [{ find: "const childProcess = require('node:child_process');", replace: "const childProcess = { get spawn() { return require('node:child_process').spawn; } };" }] },
  { file: /[\\/]ioredis[\\/]built[\\/]connectors[\\/]StandaloneConnector\.js$/, edits: [{ find: 'const tls_1 = require("tls");', replace: 'const tls_1 = { get connect() { return require("tls").connect; } };' }] },
  { file: /[\\/]ioredis[\\/]built[\\/]connectors[\\/]SentinelConnector[\\/]index\.js$/, edits: [{ find: 'const tls_1 = require("tls");', replace: 'const tls_1 = { get connect() { return require("tls").connect; } };' }] },
  { file: /[\\/]ioredis[\\/]built[\\/]Script\.js$/, edits: [{ find: 'const crypto_1 = require("crypto");', replace: 'const crypto_1 = { get createHash() { return require("crypto").createHash; } };' }] },
  // dns: only a Cluster given host names uses these defaults (called back, never promisified).
  {
    file: /[\\/]ioredis[\\/]built[\\/]cluster[\\/]ClusterOptions\.js$/,
    edits: [
      { find: 'const dns_1 = require("dns");\n', replace: '' },
      { find: '    resolveSrv: dns_1.resolveSrv,\n    dnsLookup: dns_1.lookup,', replace: '    resolveSrv: (...args) => require("dns").resolveSrv(...args),\n    dnsLookup: (...args) => require("dns").lookup(...args),' },
    ],
  },
  // assert: only a reply parser error's constructor checks its arguments with it.
  {
    file: /[\\/]redis-errors[\\/]lib[\\/]modern\.js$/,
    edits: [{ find: "const assert = require('assert')", replace: "const assert = Object.assign((...args) => require('assert')(...args), { strictEqual: (...args) => require('assert').strictEqual(...args) })" }],
  },
  // debug (ioredis's logging) tries an optional require('supports-color') when it loads; none is installed, so
  // every command paid a failed module resolution (a dozen stats) for it. Debug's basic colours are kept.
  { file: /[\\/]debug[\\/]src[\\/]node\.js$/, edits: [{ find: "const supportsColor = require('supports-color');", replace: 'const supportsColor = null;' }] },
  // chalk's own colour detection when it loads (supports-color: the environment, argv, os.release) is never
  // used: every Chalk the tool makes is given its level (src/cli/output.ts, colourLevel).
  { file: /[\\/]chalk[\\/]source[\\/]index\.js$/, edits: [{ find: "import supportsColor from '#supports-color';", replace: 'const supportsColor = { stdout: false, stderr: false };' }] },
  {
    file: /[\\/]ioredis[\\/]built[\\/]utils[\\/]Commander\.js$/,
    edits: [
      {
        find: 'commands.forEach(function (commandName) {\n    Commander.prototype[commandName] =',
        replace: 'Commander.prototype.__tenantctl_a = 0; Commander.prototype.__tenantctl_b = 0; delete Commander.prototype.__tenantctl_a; delete Commander.prototype.__tenantctl_b;\ncommands.forEach(function (commandName) {\n    Commander.prototype[commandName] =',
      },
    ],
  },
];
const dependencyPatches = {
  name: 'dependency-patches',
  setup(b) {
    for (const { file, edits } of DEPENDENCY_PATCHES) {
      b.onLoad({ filter: file }, (args) => {
        let text = readFileSync(args.path, 'utf8');
        for (const { find, replace } of edits) {
          if (!text.includes(find)) throw new Error(`${args.path}: no '${find}' to patch (the dependency changed: update scripts/build-cli.mjs)`);
          text = text.replace(find, replace);
        }
        return { contents: text, loader: 'js' };
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
  plugins: [dependencyPatches],
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
// It names the V8 code cache by the bundle's content hash (src/cli/load-bundle.ts).
const bundleHash = createHash('sha256').update(readFileSync(path.join(bundle, 'tenantctl.cjs'))).digest('hex').slice(0, 16);
await build({
  ...COMMONJS_FOR_NODE,
  define: { ...COMMONJS_FOR_NODE.define, __TENANTCTL_BUNDLE_HASH__: JSON.stringify(bundleHash) },
  entryPoints: [path.join(root, 'dist', 'cli', 'launch.js')],
  outfile: path.join(bundle, 'launcher.cjs'),
});

// Beside the compiled module, and beside the bundle.
for (const file of sqlFiles(path.join(root, 'src'))) {
  const rel = path.relative(path.join(root, 'src'), file);
  for (const dir of [path.join(root, 'dist', path.dirname(rel)), bundle]) {
    mkdirSync(dir, { recursive: true });
    cpSync(file, path.join(dir, path.basename(file)));
  }
}
