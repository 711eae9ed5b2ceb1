import { mkdirSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * `mkdir -p`: a directory and its missing parents, each made once, stopping at
 * the first error. Not `mkdirSync(dir, { recursive: true })`: on Node 20 that
 * loops for ever where a file system refuses a new entry with ENOENT (procfs:
 * `--audit-log /proc/x/audit.log` or `XDG_CACHE_HOME=/proc/x` spun at 75% CPU,
 * deaf to SIGTERM). Errors are fs errors, with their codes.
 */
export function makeDirectory(dir: string, mode?: number): void {
  const missing: string[] = [];
  for (let at = path.resolve(dir); ; ) {
    try {
      if (!statSync(at).isDirectory()) throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${dir}'`), { code: 'ENOTDIR', path: at });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      missing.push(at);
      const up = path.dirname(at);
      if (up === at) break;
      at = up;
    }
  }
  for (const d of missing.reverse()) {
    try {
      mkdirSync(d, mode === undefined ? undefined : { mode });
    } catch (err) {
      // Made meanwhile by another process: fine, if it is a directory.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !statSync(d).isDirectory()) throw err;
    }
  }
}
