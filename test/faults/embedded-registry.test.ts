import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openPgliteStore } from '../../src/registry/pglite-store.js';
import { startCli, waitUntil, type CliEnd } from '../helpers/processes.js';
import { expectOneLineError, runCli, tenantYaml, uniq, workspace, type Workspace } from '../helpers/setup.js';

/**
 * The embedded registry's creation and its lock, played with real processes.
 *
 * A first `migrate-yaml` killed during PGlite's initdb left `.tenantctl/registry` half made (directories,
 * no PG_VERSION): every later write refused it as "not an embedded registry and not empty", for good. The
 * tool now marks its own creation (`registry.creating`, under the lock) and a later writer makes it again.
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

describe('creating the embedded registry: interrupted, refused, or not usable', () => {
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

  it('SIGKILLed during initdb (directories made, no PG_VERSION yet): reads say a write creates it, and the next migrate-yaml does (exit 0)', async () => {
    const ws = freshProject();
    const marker = `${ws.registryDir}.creating`;
    const entries = () => {
      try {
        return readdirSync(ws.registryDir);
      } catch {
        return [];
      }
    };
    const run = startCli(['migrate-yaml', '--json'], { cwd: ws.dir });
    const caught = await waitUntil(() => run.exited() || (entries().length > 0 && !existsSync(path.join(ws.registryDir, 'PG_VERSION'))), 30_000, 5);
    const end: CliEnd = await run.kill();
    expect(caught && end.signal, `migrate-yaml ended before initdb was caught midway: ${end.stderr}`).toBe('SIGKILL');
    // What the kill left: a half-made cluster, and the marker saying it is the tool's own.
    expect(entries().length).toBeGreaterThan(0);
    expect(existsSync(path.join(ws.registryDir, 'PG_VERSION'))).toBe(false);
    expect(existsSync(marker)).toBe(true);

    // A read finds no registry, answers from YAML, and says a write creates it (which is true again).
    const listed = await runCli(['list-tenants', '--json'], { cwd: ws.dir });
    expect(listed.code, listed.stderr).toBe(0);
    expectNoCrash(listed);
    expect(listed.stderr).toMatch(/no embedded registry at .*a command that writes, such as migrate-yaml, creates it/);
    expect((JSON.parse(listed.stdout) as Array<{ id: string; source: string }>).map((r) => [r.id, r.source])).toEqual([['acme', 'yaml'], ['globex', 'yaml']]);

    // The next write empties the half-made directory and creates the registry (was: exit 2, "not an embedded registry and not empty").
    const next = await runCli(['migrate-yaml', '--json'], { cwd: ws.dir, timeoutMs: 60_000 });
    expectNoCrash(next);
    expect(next.code, next.stderr).toBe(0);
    expect(reportOf(next).items.filter((i) => i.kind === 'tenant').map((i) => [i.id, i.action, i.written])).toEqual([
      ['acme', 'create', true],
      ['globex', 'create', true],
    ]);
    expect(existsSync(marker)).toBe(false);
    expect(existsSync(`${ws.registryDir}.lock`)).toBe(false);
    const after = await runCli(['list-tenants', '--json'], { cwd: ws.dir });
    expect(after.code, after.stderr).toBe(0);
    expect((JSON.parse(after.stdout) as Array<{ id: string; source: string }>).map((r) => [r.id, r.source])).toEqual([['acme', 'database'], ['globex', 'database']]);
    expect(await registryIds(ws.registryDir)).toEqual(['acme', 'globex']);
  }, 90_000);

  it('interrupted after initdb wrote PG_VERSION (the marker still there): reads find no registry, the next write makes it again', async () => {
    const ws = freshProject();
    // As a kill late in initdb leaves it: PG_VERSION and part of the cluster, the marker not yet removed.
    mkdirSync(path.join(ws.registryDir, 'base', '1'), { recursive: true });
    mkdirSync(path.join(ws.registryDir, 'global'));
    writeFileSync(path.join(ws.registryDir, 'PG_VERSION'), '17\n');
    // The marker names the directory it was written for (device and inode), as the tool writes it.
    const st = statSync(ws.registryDir);
    writeFileSync(`${ws.registryDir}.creating`, `tenantctl is creating the embedded registry\ndirectory: ${st.dev}:${st.ino}\n`);

    const read = await runCli(['get-config', 'acme', '--json'], { cwd: ws.dir });
    expect(read.code, read.stderr).toBe(0);
    expectNoCrash(read);
    expect(read.stderr).toMatch(/no embedded registry at .*its creation was interrupted.*creates it/);
    expect(JSON.parse(read.stdout).source).toBe('yaml');

    const next = await runCli(['migrate-yaml', '--json'], { cwd: ws.dir, timeoutMs: 60_000 });
    expectNoCrash(next);
    expect(next.code, next.stderr).toBe(0);
    expect(existsSync(`${ws.registryDir}.creating`)).toBe(false);
    expect(await registryIds(ws.registryDir)).toEqual(['acme', 'globex']);
  }, 90_000);

  it('a link left where the creation marker is written is not followed (a dangling one made a file at its target)', async () => {
    const ws = freshProject();
    const target = path.join(ws.dir, 'outside', 'made-through-the-link');
    mkdirSync(path.dirname(target));
    symlinkSync(target, `${ws.registryDir}.creating`);
    const r = await runCli(['migrate-yaml'], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(target)).toBe(false);
    expect(existsSync(`${ws.registryDir}.creating`)).toBe(false);
  }, 30_000);

  it('a non-empty directory that is not a registry, without the marker, is still refused (exit 2) and left as it was', async () => {
    const ws = freshProject();
    // The same layout a killed initdb leaves, but nothing says the tool made it: it may be the user's.
    for (const d of ['base', 'global', 'pg_wal']) mkdirSync(path.join(ws.registryDir, d), { recursive: true });
    writeFileSync(path.join(ws.registryDir, 'notes.txt'), 'mine\n');
    const r = await runCli(['migrate-yaml'], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(2);
    expectOneLineError(r);
    expect(r.stderr).toMatch(/is not an embedded registry and not empty: refusing to create one there/);
    expect(readdirSync(ws.registryDir).sort()).toEqual(['base', 'global', 'notes.txt', 'pg_wal']);
    expect(existsSync(`${ws.registryDir}.creating`)).toBe(false);
  }, 30_000);

  it('a marker written for another directory (the half-made one removed by hand, something else put in its place) is stale: it goes, and the directory is left as it is', async () => {
    const ws = freshProject();
    for (const d of ['base', 'global']) mkdirSync(path.join(ws.registryDir, d), { recursive: true });
    writeFileSync(path.join(ws.registryDir, 'notes.txt'), 'mine\n');
    // Names a directory identity that is not this one's.
    writeFileSync(`${ws.registryDir}.creating`, 'tenantctl is creating the embedded registry\ndirectory: 1:1\n');
    const r = await runCli(['migrate-yaml'], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/is not an embedded registry and not empty: refusing to create one there/);
    // Before: the marker alone was trusted, and the directory emptied.
    expect(readdirSync(ws.registryDir).sort()).toEqual(['base', 'global', 'notes.txt']);
    expect(existsSync(`${ws.registryDir}.creating`)).toBe(false);
  }, 30_000);

  it('a marker that names no directory (written before the directory existed), beside a registry put there since, is stale: the registry is read, not emptied', async () => {
    const ws = freshProject();
    expect((await runCli(['migrate-yaml'], { cwd: ws.dir, timeoutMs: 60_000 })).code).toBe(0);
    writeFileSync(`${ws.registryDir}.creating`, 'tenantctl is creating the embedded registry\ndirectory: \n');
    const read = await runCli(['list-tenants', '--json'], { cwd: ws.dir });
    expect(read.code, read.stderr).toBe(0);
    expect(read.stderr).not.toMatch(/interrupted/);
    const again = await runCli(['migrate-yaml', '--json'], { cwd: ws.dir, timeoutMs: 60_000 });
    expect(again.code, again.stderr).toBe(0);
    // Nothing was made again: every tenant is unchanged, not created.
    expect((JSON.parse(again.stdout).items as Array<{ kind: string; action: string }>).filter((i) => i.kind === 'tenant').every((i) => i.action === 'unchanged')).toBe(true);
  }, 120_000);

  it('a directory with PG_VERSION that PGlite cannot start, without the marker (not ours to redo): writes exit 3 saying so, reads fall back (was "internal error", exit 70)', async () => {
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
