import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';

/**
 * Runs the CLI bundle (one CommonJS file, built by scripts/build-cli.mjs) as
 * Node runs a CommonJS module (the same wrapper, `this`, `require`, `module`,
 * `__filename`), but compiled as a vm.Script instead of through require():
 * Node 20's loader compiles a module with V8's CompileFunction, which costs a
 * large file far more than compiling it as a script (Node 22 changed its
 * loader for this). Measured with callgrind, a cache-hit `get-config` (the
 * whole process, `node -e 0` alone being 505M instructions): 823M this way,
 * 985M through require() of the same file, 977-1,041M with the ES module
 * chunks this replaced. V8's code cache on top (cachedData) changed nothing
 * measurable: deserializing cost what compiling the functions in it did.
 */
export function runBundle<T>(bundle: string | URL): T {
  const filename = bundle instanceof URL ? fileURLToPath(bundle) : bundle;
  const source = readFileSync(filename, 'utf8');
  const wrapped = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, { filename });
  const module = { exports: {} as T };
  wrapped.runInThisContext().call(module.exports, module.exports, createRequire(filename), module, filename, path.dirname(filename));
  return module.exports;
}
