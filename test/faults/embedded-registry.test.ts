import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openPgliteStore } from '../../src/registry/pglite-store.js';
import { startCli, waitUntil, type CliEnd } from '../helpers/processes.js';
import { expectOneLineError, runCli, tenantYaml, uniq, workspace, type Workspace } from '../helpers/setup.js';

/**
 * The embedded registry's directory and its lock, played with real processes.
 *
 * Two spellings of one registry (a symlink to it, and the project's default path) took two lock files, so
 * neither waited for the other; and PGlite given the directory through the symlink failed with "internal
 * error: [object Object]", exit 70 (its file system threw an emscripten ErrnoError, which is not an Error:
 * it cannot open a data directory through a symlink). The lock and PGlite now get the real path, and a
 * failure of PGlite itself is exit 3 with words.
 */

const TIERS = 'features: [has_ai, has_payroll]\ntiers:\n  core: { features: [has_ai], max_devices: 2 }\n  pro: { features: [has_ai, has_payroll], max_devices: 5 }\n';

interface Report {
  items: Array<{ id: string; kind: string; action: string; written?: boolean }>;
}
const reportOf = (r: { stdout: string }) => JSON.parse(r.stdout) as Report;

function expectNoCrash(r: { code: number | null; stderr: string }) {
  expect(r.code, r.stderr).not.toBe(70);
  expect(r.stderr).not.toMatch(/internal error|\[object Object\]|^\s+at /m);
}

async function registryIds(dir: string): Promise<string[]> {
  const store = await openPgliteStore(dir, { timeoutMs: 10_000 });
  try {
    return (await store.db.query('SELECT id FROM tenants ORDER BY id')).rows.map((r) => String(r.id));
  } finally {
    await store.close();
  }
}

describe('an embedded registry directory that cannot be used', () => {
  const spaces: Workspace[] = [];
  afterEach(() => spaces.splice(0).forEach((ws) => ws.cleanup()));
  /** A project with tenant files and an empty `.tenantctl/` (no registry yet). */
  const freshProject = () => {
    const ws = workspace({ acme: tenantYaml('acme', 'Acme'), globex: tenantYaml('globex', 'Globex') }, { registry: false });
    ws.writeTenant('tiers', TIERS);
    mkdirSync(path.dirname(ws.registryDir));
    spaces.push(ws);
    return ws;
  };

  it('a directory with PG_VERSION that PGlite cannot start: writes exit 3 saying so, reads fall back (was "internal error", exit 70)', async () => {
    const ws = freshProject();
    mkdirSync(ws.registryDir);
    writeFileSync(path.join(ws.registryDir, 'PG_VERSION'), '17\n');
    const write = await runCli(['migrate-yaml'], { cwd: ws.dir, timeoutMs: 60_000 });
    expectNoCrash(write);
    expect(write.code, write.stderr).toBe(3);
    expectOneLineError(write);
    expect(write.stderr).toMatch(/^error: the embedded registry .* could not be opened: PGlite failed to initialize properly/);
    expect(readdirSync(ws.registryDir)).toContain('PG_VERSION');
    const read = await runCli(['get-config', 'acme', '--json'], { cwd: ws.dir, timeoutMs: 60_000 });
    expectNoCrash(read);
    expect(read.code, read.stderr).toBe(0);
    expect(JSON.parse(read.stdout).source).toBe('yaml');
    expect(read.stderr).toMatch(/could not be opened: PGlite failed to initialize properly/);
  }, 90_000);

  it('a registry given by a link to a directory that does not exist is exit 2 (was "internal error")', async () => {
    const ws = freshProject();
    symlinkSync(path.join(ws.dir, 'nowhere'), path.join(ws.dir, 'dangling'));
    const r = await runCli(['migrate-yaml', '--registry', 'dangling'], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(2);
    expectOneLineError(r);
    expect(r.stderr).toMatch(/is a link to a directory that does not exist/);
  }, 30_000);
});

describe('two spellings of one embedded registry (a symlink and the project path) wait on one lock', () => {
  let ws: Workspace;
  let link: string;
  let hole: net.Server;
  let holeUrl: string;
  const sockets: net.Socket[] = [];
  beforeAll(async () => {
    ws = workspace();
    ws.writeTenant('tiers', TIERS);
    link = path.join(ws.dir, 'registry-link');
    symlinkSync(ws.registryDir, link);
    // A Redis that accepts and never answers: a migrate-yaml's invalidation waits on it, holding the registry.
    hole = net.createServer((s) => sockets.push(s));
    await new Promise<void>((r) => hole.listen(0, '127.0.0.1', () => r()));
    holeUrl = `redis://127.0.0.1:${(hole.address() as net.AddressInfo).port}`;
    const first = await runCli(['migrate-yaml'], { cwd: ws.dir, timeoutMs: 60_000 });
    expect(first.code, first.stderr).toBe(0);
  });
  afterAll(() => {
    sockets.forEach((s) => s.destroy());
    hole?.close();
    ws?.cleanup();
  });

  for (const holderVia of ['link', 'project path'] as const) {
    it(`held through the ${holderVia}: the other spelling waits, and gives up after its timeout naming the holder (exit 3)`, async () => {
      const id = uniq('sp');
      ws.writeTenant(id, tenantYaml(id, 'Spelled', 'subscription: { tier: core }\n'));
      const viaLink = ['--registry', link];
      const holder = startCli(['migrate-yaml', id, ...(holderVia === 'link' ? viaLink : []), '--redis-url', holeUrl, '--redis-timeout', '6000'], { cwd: ws.dir });
      try {
        // One lock file, beside the real directory, whichever spelling took it.
        const lockFile = `${ws.registryDir}.lock`;
        const held = await waitUntil(() => existsSync(lockFile) && readFileSync(lockFile, 'utf8').includes(`"pid":${holder.pid}`), 15_000);
        expect(held, holder.stderr()).toBe(true);
        expect(existsSync(`${link}.lock`)).toBe(false);
        const other = await runCli(['set-subscription', id, '--tier', 'pro', '--registry-timeout', '300', ...(holderVia === 'link' ? [] : viaLink)], { cwd: ws.dir });
        expect(holder.exited(), 'the holder finished before the other process tried').toBe(false);
        expectNoCrash(other);
        expect(other.code, other.stderr).toBe(3);
        expect(other.stderr).toMatch(new RegExp(`in use by pid ${holder.pid}\\b`));
      } finally {
        const end = await holder.done;
        expectNoCrash(end);
        expect(end.code, end.stderr).toBe(4); // written; its invalidation owed (Redis never answered)
      }
    }, 60_000);
  }

  it('migrate-yaml through the link and set-subscription through the project path at once: both exit 0, one after the other', async () => {
    const id = uniq('sp');
    ws.writeTenant(id, tenantYaml(id, 'Both', 'subscription: { tier: core }\n'));
    const seed = await runCli(['migrate-yaml', id], { cwd: ws.dir, timeoutMs: 60_000 });
    expect(seed.code, seed.stderr).toBe(0);
    ws.writeTenant(id, tenantYaml(id, 'Both, renamed', 'subscription: { tier: core }\n'));
    const [migrated, subscribed] = await Promise.all([
      startCli(['migrate-yaml', id, '--json', '--registry', link], { cwd: ws.dir }).done,
      startCli(['set-subscription', `${id}-b`, '--tier', 'pro'], { cwd: ws.dir }).done,
    ]);
    expectNoCrash(migrated);
    expectNoCrash(subscribed);
    expect(migrated.code, migrated.stderr).toBe(0);
    expect(subscribed.code, subscribed.stderr).toBe(0);
    const store = await openPgliteStore(ws.registryDir, { timeoutMs: 10_000 });
    try {
      expect((await store.db.query('SELECT name FROM tenants WHERE id = $1', [id])).rows).toEqual([{ name: 'Both, renamed' }]);
      expect((await store.db.query('SELECT tier FROM business_subscriptions WHERE business_id = $1', [`${id}-b`])).rows).toEqual([{ tier: 'pro' }]);
    } finally {
      await store.close();
    }
  }, 60_000);
});
