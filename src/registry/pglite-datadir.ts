import { existsSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { createRequire } from 'node:module';
import path from 'node:path';

/**
 * A new embedded registry is unpacked from a data directory made at build time
 * (scripts/build-pglite-datadir.mjs: what PGlite's initdb makes, dumped as PGlite's
 * own tarball), not made by initdb again: initdb costs ~5 s and ~750 MB here, the
 * unpacking ~1 s and ~300 MB (PGlite's `loadDataDir`). The pack is named by the
 * PGlite version that made it; another version installed since finds none, and
 * runs initdb as before.
 */

/** Where the build puts the packs: `dist/pglite-datadir/` of the package (the same from src/, dist/ and the CLI bundle). */
const PACK_DIR = new URL('../../dist/pglite-datadir/', import.meta.url);

/** The pack's file for a PGlite version. */
export const datadirPackFile = (version: string) => new URL(`${version}.tar.gz`, PACK_DIR);

/** The installed PGlite's version (its package.json, found from its entry point: the package exports no package.json). */
export function pgliteVersion(): string | undefined {
  try {
    let dir = path.dirname(createRequire(import.meta.url).resolve('@electric-sql/pglite'));
    for (let up = 0; up < 4; up++, dir = path.dirname(dir)) {
      const file = path.join(dir, 'package.json');
      if (!existsSync(file)) continue;
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === '@electric-sql/pglite' && typeof pkg.version === 'string' && /^[\w.+-]+$/.test(pkg.version)) return pkg.version;
    }
  } catch {
    /* not found: initdb */
  }
  return undefined;
}

/**
 * The fresh data directory made for the installed PGlite, as a tar for `loadDataDir`; undefined when there is
 * none, or it is damaged (initdb then).
 */
export function freshDataDir(version = pgliteVersion(), file: URL | string | undefined = version && datadirPackFile(version)): Blob | undefined {
  if (!file) return undefined;
  try {
    // Unpacked here (gzip checks its CRC): a truncated or foreign pack is initdb, as none is. Handed to PGlite
    // gzipped, a damaged one failed inside its own gunzip with rejections nothing awaited: the process died
    // (exit 1, a stack), for every first write until the file was deleted by hand (a review).
    return new Blob([gunzipSync(readFileSync(file))]);
  } catch {
    return undefined;
  }
}
