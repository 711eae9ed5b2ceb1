import { PGlite } from '@electric-sql/pglite';
import { readFileSync, writeFileSync, rmSync } from 'node:fs';
const startParams = [...PGlite.defaultStartParams, '-c', 'shared_buffers=16MB'];
const mode = process.argv[2];
const t0 = performance.now();
if (mode === 'make') {
  const db = await PGlite.create({ startParams });
  const blob = await db.dumpDataDir('gzip');
  writeFileSync('/tmp/pgl/dd.tar.gz', Buffer.from(await blob.arrayBuffer()));
  await db.close();
} else {
  const blob = new Blob([readFileSync('/tmp/pgl/dd.tar.gz')]);
  rmSync('/tmp/pgl/nd', { recursive: true, force: true });
  const db = mode === 'mem' ? await PGlite.create({ startParams, loadDataDir: blob }) : await PGlite.create('/tmp/pgl/nd', { startParams, loadDataDir: blob });
  const t1 = performance.now();
  console.log((await db.query('select count(*)::int n from pg_class')).rows);
  await db.close();
  console.log('create', (t1 - t0).toFixed(0));
}
console.log(mode, 'total', (performance.now() - t0).toFixed(0), 'rss', (process.memoryUsage().rss / 1e6).toFixed(0));
