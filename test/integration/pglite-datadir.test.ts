import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PGlite } from '@electric-sql/pglite';
import { datadirPackFile, freshDataDir, pgliteVersion } from '../../src/registry/pglite-datadir.js';
import { openPgliteStore } from '../../src/registry/pglite-store.js';
import { ROOT, runCli, tenantYaml, workspace } from '../helpers/setup.js';

/**
 * A new embedded registry is unpacked from the data directory the build made with PGlite's initdb
 * (scripts/build-pglite-datadir.mjs), not made by initdb again: a first migrate-yaml took ~3-5 s and
 * ~700 MB, most of it initdb. These check the pack is there for the installed PGlite, that a registry
 * made from it is the cluster initdb makes (compared with one initdb makes here) and works, and that
 * without a pack for the installed version the creation runs initdb.
 */

let root: string;
beforeAll(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-datadir-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Every path in a directory, relative, sorted (files and directories). */
function tree(dir: string, rel = ''): string[] {
  return readdirSync(path.join(dir, rel), { withFileTypes: true }).flatMap((e) => {
    const p = path.join(rel, e.name);
    return e.isDirectory() ? [`${p}/`, ...tree(dir, p)] : [p];
  }).sort();
}

describe('the packed PGlite data directory', () => {
  it('the build made one for the installed PGlite, named by its version', () => {
    const version = pgliteVersion();
    expect(version).toMatch(/^\d+\.\d+\.\d+/);
    expect(statSync(datadirPackFile(version!)).size).toBeGreaterThan(1_000_000);
    expect(freshDataDir()).toBeInstanceOf(Blob);
  });

  it('another PGlite version has none: the creation runs initdb (no pack is read)', () => {
    expect(freshDataDir('0.0.0-not-built')).toBeUndefined();
  });

  it('a damaged pack (truncated, or not gzip) is none: initdb, where PGlite\'s own gunzip of it ended the process with unhandled rejections (a review)', async () => {
    const whole = readFileSync(datadirPackFile(pgliteVersion()!));
    const truncated = path.join(root, 'truncated.tar.gz');
    writeFileSync(truncated, whole.subarray(0, Math.floor(whole.length / 2)));
    const foreign = path.join(root, 'foreign.tar.gz');
    writeFileSync(foreign, 'not a tarball\n');
    expect(freshDataDir(pgliteVersion(), truncated)).toBeUndefined();
    expect(freshDataDir(pgliteVersion(), foreign)).toBeUndefined();
    // The whole one is a tar PGlite takes as it is (no gzip left for it to undo).
    const tar = freshDataDir()!;
    expect(Buffer.from(await tar.slice(257, 262).arrayBuffer()).toString('latin1')).toBe('ustar');
  });

  it('package.json pins the PGlite version the pack is made for (a range let an install take a newer one, never using the pack)', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    expect(pkg.dependencies['@electric-sql/pglite']).toBe(pgliteVersion());
  });

  it('a registry created from it holds what initdb makes (every path), owner-only, and works: schema, a write, a read after reopening', async () => {
    const made = path.join(root, 'made', 'registry');
    const store = await openPgliteStore(made, { create: true, timeoutMs: 10_000 });
    try {
      await store.ensureSchema();
      await store.db.query("INSERT INTO tenants (id, name, tenant_config, status) VALUES ('acme', 'Acme', '{}'::jsonb, 'active')");
    } finally {
      await store.close();
    }
    expect(statSync(made).mode & 0o777).toBe(0o700);
    expect(readdirSync(path.dirname(made))).not.toContain('registry.creating');
    const reopened = await openPgliteStore(made, { timeoutMs: 10_000 });
    try {
      expect((await reopened.db.query('SELECT id FROM tenants')).rows).toEqual([{ id: 'acme' }]);
    } finally {
      await reopened.close();
    }

    // The same cluster as PGlite's initdb makes in an empty directory (the comparison also runs initdb here).
    const byInitdb = path.join(root, 'initdb');
    const db = await PGlite.create(byInitdb);
    await db.close();
    const pristine = path.join(root, 'pristine');
    const fromPack = await PGlite.create(pristine, { loadDataDir: freshDataDir()! });
    await fromPack.close();
    expect(tree(pristine)).toEqual(tree(byInitdb));
    expect(readFileSync(path.join(pristine, 'PG_VERSION'), 'utf8')).toBe(readFileSync(path.join(byInitdb, 'PG_VERSION'), 'utf8'));
  }, 60_000);

  it('the CLI: a first migrate-yaml in a new project creates the registry and writes (the note says so)', async () => {
    const ws = workspace({ acme: tenantYaml('acme') }, { registry: false });
    try {
      const r = await runCli(['migrate-yaml', '--json'], { cwd: ws.dir });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/creating the embedded registry/);
      expect(JSON.parse(r.stdout).counts).toMatchObject({ create: 1 });
      const g = await runCli(['get-config', 'acme', '--no-cache', '--json'], { cwd: ws.dir });
      expect(JSON.parse(g.stdout)).toMatchObject({ id: 'acme', source: 'database' });
    } finally {
      ws.cleanup();
    }
  });
});
