import { isAscii } from 'node:buffer';
import { readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cachedDataVersionTag } from 'node:v8';
import { Script } from 'node:vm';
import { makeCacheDirectory, readOwnCacheFile, userCacheDir } from '../user-cache.js';

/** What became of V8's code cache in this run. */
export type CodeCacheState = 'used' | 'missing' | 'rejected';

export interface LoadedBundle<T> {
  exports: T;
  codeCache: CodeCacheState;
  /** The cache file for this bundle, kind of run, Node and V8 flags. */
  cacheFile: string;
  /** After the command: writes the cache when none fitted (never throws; a cache that cannot be written only costs time). */
  saveCodeCache(): void;
}

/** Code caches, and temporary files a killed writer left (they age out the same way). */
const CACHE_FILE = /^code-.*\.bin(\..*\.tmp)?$/;
const STALE_MS = 7 * 24 * 3600 * 1000;

/**
 * Runs the CLI bundle (one CommonJS file, built by scripts/build-cli.mjs) as
 * Node runs a CommonJS module (the same wrapper, `this`, `require`, `module`,
 * `__filename`), but compiled as a vm.Script with V8's code cache. Most of a
 * short command's start-up is V8 parsing and compiling code; Node 20 caches
 * none for modules (module.enableCompileCache is 22.1+), and its loader
 * compiles a CommonJS module through CompileFunction, slower than a script.
 * Measured with callgrind, a cache-hit `get-config` (`node -e 0` alone is
 * ~505M instructions): ~1,035M with the ES module chunks this replaced, 985M
 * through require() of the bundle, ~935M as a vm.Script, ~820M with the cache.
 *
 * The cache lives in the user's cache directory, one file per kind of run,
 * bundle (size and mtime), Node version and V8 flag set (cachedDataVersionTag).
 * The first run that finds none writes it after its command: a temporary file
 * renamed into place; other bundles' caches (an upgrade) go after a week
 * unwritten. V8 checks the data against the source and the flags and rejects
 * what does not fit; the bundle is then compiled as without one. Flags must be
 * set before this call; a run that changes them later (v8-flags.ts) writes
 * nothing. Each `kind` of run has its own file (the launcher makes one per
 * command, and one for runs without a command such as `--help`): V8 caches
 * the functions the run that wrote the file compiled, so a cache written by
 * another command serves little of this one's code (get-config through
 * migrate-yaml's cache: ~50 ms slower than through its own), and the code a
 * whole command compiled (~600 KB) would cost `--help` more to read than it saves.
 */
export function loadBundle<T>(bundle: string | URL, options: { env?: NodeJS.ProcessEnv; kind?: string; contentHash?: string } = {}): LoadedBundle<T> {
  const { env = process.env, kind = 'command', contentHash } = options;
  const filename = bundle instanceof URL ? fileURLToPath(bundle) : bundle;
  // The build keeps the bundle ASCII (scripts/build-cli.mjs), and ASCII read
  // as Latin-1 is the same text: ~1 ms less than decoding 1.1 MB as UTF-8.
  const bytes = readFileSync(filename);
  const source = isAscii(bytes) ? bytes.toString('latin1') : bytes.toString('utf8');
  const { size, mtimeMs } = statSync(filename);
  const tag = cachedDataVersionTag();
  const dir = userCacheDir(env);
  // The bundle's content hash (the build puts it in the launcher) names its cache: V8 checks a cache
  // against the source's length only, and size + mtime repeat where mtimes are normalised (Nix, images
  // built with SOURCE_DATE_EPOCH, rsync -a): a same-size upgrade would run the old bytecode.
  // And the bundle's path: V8's cached code keeps the script name it was compiled under, so another
  // checkout's cache (same bytes) made stack traces name that checkout's files (a review).
  const cacheFile = path.join(dir, `code-${kind}-${tag}-${contentHash ?? `${size}-${Math.trunc(mtimeMs)}`}-${fnv1a(filename)}.bin`);
  // Only this user's own file (see readOwnCacheFile): its bytecode is run.
  const cachedData = readOwnCacheFile(cacheFile);
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, { filename, cachedData });
  const codeCache: CodeCacheState = !cachedData ? 'missing' : script.cachedDataRejected ? 'rejected' : 'used';
  const module = { exports: {} as T };
  script.runInThisContext().call(module.exports, module.exports, createRequire(filename), module, filename, path.dirname(filename));
  return {
    exports: module.exports,
    codeCache,
    cacheFile,
    saveCodeCache() {
      if (codeCache === 'used' || cachedDataVersionTag() !== tag) return;
      try {
        makeCacheDirectory(dir);
        // Unique (a same-pid process in a restarted container must not find a leftover in its way).
        const tmp = `${cacheFile}.${process.pid}-${Math.random().toString(36).slice(2, 10)}.tmp`;
        // 'wx': a new file, never through a link or file someone put at that (predictable) name.
        writeFileSync(tmp, script.createCachedData(), { mode: 0o600, flag: 'wx' });
        renameSync(tmp, cacheFile);
        // Not at once: two installed versions used in turn would keep deleting each other's.
        for (const name of readdirSync(dir)) {
          const other = path.join(dir, name);
          if (CACHE_FILE.test(name) && other !== cacheFile && Date.now() - statSync(other).mtimeMs > STALE_MS) unlinkSync(other);
        }
      } catch {
        /* only slower next time */
      }
    },
  };
}

/** FNV-1a of a string, 8 hex digits: a file name's short tag (no node:crypto at start-up). */
function fnv1a(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, '0');
}
