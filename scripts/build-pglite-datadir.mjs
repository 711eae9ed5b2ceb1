// Build step after tsc: the data directory a new embedded registry is unpacked from
// (src/registry/pglite-datadir.ts): PGlite's initdb run once here, in memory, and
// dumped as PGlite's own tarball, named by the PGlite version. Made again only when
// no pack for the installed version is there (initdb: ~5 s, ~750 MB).
import { mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { datadirPackFile, freshDataDir, pgliteVersion } from '../dist/registry/pglite-datadir.js';

const version = pgliteVersion();
if (!version) throw new Error('build-pglite-datadir: the installed @electric-sql/pglite has no readable version');
const file = fileURLToPath(datadirPackFile(version));
// Made again when missing or damaged (one that does not unpack).
if (!freshDataDir(version)) {
  const { PGlite } = await import('@electric-sql/pglite');
  const db = await PGlite.create();
  try {
    const pack = Buffer.from(await (await db.dumpDataDir('gzip')).arrayBuffer());
    const dir = path.dirname(file);
    mkdirSync(dir, { recursive: true });
    // Packs of other versions go (a PGlite updated since): only the installed one is ever read.
    for (const old of readdirSync(dir)) if (!old.includes('.tmp')) rmSync(path.join(dir, old), { force: true });
    // A temporary name of this process's own: two builds at once each rename a whole file into place.
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, pack);
    renameSync(tmp, file);
  } finally {
    await db.close();
  }
}
