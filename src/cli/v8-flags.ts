import { setFlagsFromString } from 'node:v8';

/**
 * For a command that streams keys past in batches (millions of them, held
 * for a moment each): V8 doubles its young generation each time the
 * survivors of its scavenges add up to its size, which over a long pass they
 * always do, up to 32 MB of RSS that holds nothing. Kept at its starting
 * size, `cache-info --by tenant` over 2M keys peaks ~30 MB lower at the same
 * speed (bench/cache-bulk.js). migrate-yaml sets it only for the embedded
 * registry: it keeps what it reads (10,000 configs until they are written),
 * so every scavenge copies them again (garbage collection 360-400 ms of a
 * 10,000-tenant run with the young generation kept small, 140-150 ms without,
 * CPU profiles), but the ~30 MB more at the peak took PGlite's runs to
 * 282-296 MB against a 300 MB budget (PostgreSQL's: 167-188 MB).
 * Process-wide, so the CLI sets it per command, never the library.
 */
export function keepYoungGenerationSmall(): void {
  setFlagsFromString('--semi-space-growth-factor=1');
}

/**
 * The commands that sweep: the launcher and action() call
 * keepYoungGenerationSmall for them, from this one list. The
 * launcher sets the flag for them before compiling the bundle, so that they
 * compile under the flags they end with and keep a V8 code cache of their
 * own. Before, a run that changed a flag midway could never write one: where
 * only these commands run (a cron job's invalidate or cache-info), every
 * run compiled the whole bundle from scratch. A tenant id equal to one of
 * these names, named before the command, only means a smaller young
 * generation for that run.
 */
export const SWEEPING_COMMANDS: ReadonlySet<string> = new Set(['invalidate', 'invalidate-all', 'cache-info']);

/**
 * For every command: WebAssembly compiled once, by the baseline compiler
 * (Liftoff), never tiered up. The embedded registry is PGlite, a ~9 MB WASM
 * module; V8 would recompile all of it with TurboFan in the background while a
 * short command runs, competing for the CPU and holding both codes. Measured
 * (bench/startup-time.js, bench/migration.js): get-config --no-cache on the
 * embedded registry 0.52-0.58 s / 219 MB -> 0.37-0.41 s / 134 MB; a
 * 10,000-tenant migration 2.0-2.1 s / 293-313 MB -> 1.7-1.9 s / 254-259 MB.
 * Commands that never open PGlite run no WebAssembly: nothing changes for them.
 * Process-wide, so the CLI sets it, never the library.
 */
export function compileWasmOnce(): void {
  setFlagsFromString('--liftoff-only');
}
