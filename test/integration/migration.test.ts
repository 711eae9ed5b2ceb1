import { mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openPgliteStore } from '../../src/registry/pglite-store.js';
import type { SqlRegistryStore } from '../../src/registry/sql-store.js';
import { InterruptedError } from '../../src/errors.js';
import { MIGRATION_BATCH, migrationExitCode, type MigrationReport } from '../../src/services/migration.js';
import { sharedRedisUrl, tenantYaml, uniq, workspace, type Workspace } from '../helpers/setup.js';
import { freePort } from '../helpers/ports.js';
import { wireServices } from '../helpers/services.js';

describe('Migration: YAML -> registry', () => {
  let ws: Workspace;
  let store: SqlRegistryStore;
  let redis: Redis;
  const registry = async () => store;
  beforeAll(async () => {
    store = await openPgliteStore(undefined);
    await store.ensureSchema();
    redis = new Redis(sharedRedisUrl());
  });
  afterAll(async () => {
    redis.disconnect();
    await store.close();
    // The last test's workspace (each run left a directory in the temporary folder).
    ws?.cleanup();
  });
  beforeEach(() => {
    ws?.cleanup();
    ws = workspace({}, { registry: false });
  });

  it('plans, applies, is idempotent, and invalidates the cache of what it writes', async () => {
    const [a, b, dev] = [uniq('a'), uniq('b'), uniq('dev')];
    ws.writeTenant(a, tenantYaml(a, 'A', 'email:\n  primary: a@x\n  smtp: { password: literal }\n'));
    ws.writeTenant(b, tenantYaml(b, 'B'));
    ws.writeTenant(dev, tenantYaml(dev, 'Dev', 'yaml_only: true\n'));
    const s = wireServices({ redisUrl: sharedRedisUrl(), registry, tenantsDir: ws.tenantsDir });

    const plan = await s.migration.run({ dryRun: true });
    expect(plan.items.map((i) => [i.id, i.action])).toEqual([[a, 'create'], [b, 'create'], [dev, 'skip']].sort());
    expect(await store.getTenant(a)).toBeUndefined();

    await redis.set(`tenant_config:${a}`, '{"stale":true}');
    await redis.set(`tenant_config:${a}x`, '{"neighbour":true}');
    const applied = await s.migration.run();
    expect(applied.counts).toMatchObject({ create: 2, skip: 1, error: 0 });
    expect(applied.items.find((i) => i.id === a)).toMatchObject({ written: true, cacheInvalidated: true });
    expect(applied.items.find((i) => i.id === a)!.warnings.join()).toMatch(/literal secret email\.smtp\.password stripped/);
    expect(await redis.exists(`tenant_config:${a}`)).toBe(0);
    expect(await redis.exists(`tenant_config:${a}x`)).toBe(1);
    const row = await store.getTenant(a);
    expect(row).toMatchObject({ name: 'A', primary_email: 'a@x', config_source: 'database', status: 'active' });
    expect(JSON.stringify(row)).not.toContain('literal');
    expect(await store.getTenant(dev)).toBeUndefined();
    expect(migrationExitCode(applied)).toBe(0);

    const again = await s.migration.run();
    expect(again.counts).toMatchObject({ create: 0, update: 0, unchanged: 2 });

    ws.writeTenant(b, tenantYaml(b, 'B v2'));
    const changed = await s.migration.run({ ids: [b] });
    expect(changed.items).toEqual([expect.objectContaining({ id: b, action: 'update', written: true })]);
    expect((await store.getTenant(b))!.name).toBe('B v2');
    s.close();
  });

  it('tenants migrated earlier whose files are gone (removed, renamed) are named in the report, and left as they are', async () => {
    const own = await openPgliteStore(undefined);
    await own.ensureSchema();
    try {
      const [kept, removed, renamed] = [uniq('keep'), uniq('gone'), uniq('old')];
      for (const id of [kept, removed, renamed]) ws.writeTenant(id, tenantYaml(id, id));
      const s = wireServices({ registry: async () => own, tenantsDir: ws.tenantsDir });
      expect((await s.migration.run()).migratedWithoutFile).toBeUndefined();
      rmSync(path.join(ws.tenantsDir, `${removed}.yaml`));
      rmSync(path.join(ws.tenantsDir, `${renamed}.yaml`));
      const newName = `${renamed}-new`;
      ws.writeTenant(newName, tenantYaml(newName, 'Renamed'));
      for (const dryRun of [true, false]) {
        const r = await s.migration.run({ dryRun });
        // Before: nothing said (a whole run of the directory, and two live rows without a file).
        expect(r.migratedWithoutFile).toEqual({ total: 2, some: [removed, renamed].sort() });
      }
      expect(await own.getTenant(removed)).toMatchObject({ status: 'active' });
      s.close();
    } finally {
      await own.close();
    }
  });

  it('refuses to overwrite a tenant edited in the registry since its last migration, unless --force', async () => {
    const id = uniq('edited');
    ws.writeTenant(id, tenantYaml(id, 'Original'));
    const s = wireServices({ registry, tenantsDir: ws.tenantsDir });
    await s.migration.run({ ids: [id] });
    // A rerun first: the row's content hash is then memoised by its text; the edit must not be served from that memo.
    expect((await s.migration.run({ ids: [id] })).items[0].action).toBe('unchanged');
    await store.db.query(`UPDATE tenants SET name = 'Edited in registry' WHERE id = $1`, [id]);
    ws.writeTenant(id, tenantYaml(id, 'YAML v2'));

    const refused = await s.migration.run({ ids: [id] });
    expect(refused.items[0]).toMatchObject({ action: 'conflict', reason: 'edited in the registry since the last migration', forceable: true });
    expect((await store.getTenant(id))!.name).toBe('Edited in registry');
    expect(migrationExitCode(refused)).toBe(4);

    const forced = await s.migration.run({ ids: [id], force: true });
    expect(forced.items[0]).toMatchObject({ action: 'update', reason: expect.stringMatching(/^forced/) });
    expect((await store.getTenant(id))!.name).toBe('YAML v2');
    expect((await s.migration.run({ ids: [id] })).items[0].action).toBe('unchanged');
    s.close();
  });

  it.each([
    ['tenant_config', `tenant_config = tenant_config || '{"added": 1}'::jsonb`],
    ['a nested value', `tenant_config = jsonb_set(tenant_config, '{client}', '"x"')`],
    ['gcp_dataset', `gcp_dataset = 'other'`],
    ['gcp_project_id', `gcp_project_id = 'other'`],
    ['primary_email', `primary_email = 'other@x'`],
    ['short_name', `short_name = 'other'`],
    ['timezone', `timezone = 'other'`],
    ['currency', `currency = 'other'`],
  ])('an edit of %s in the registry after an unchanged rerun is a conflict (the memoised hash is not reused)', async (_what, set) => {
    const id = uniq('memo');
    ws.writeTenant(id, tenantYaml(id, 'Memo', 'infrastructure:\n  gcp: { project_id: p, dataset: d }\n'));
    const s = wireServices({ registry, tenantsDir: ws.tenantsDir });
    await s.migration.run({ ids: [id] });
    expect((await s.migration.run({ ids: [id] })).items[0].action).toBe('unchanged');
    await store.db.query(`UPDATE tenants SET ${set} WHERE id = $1`, [id]);
    ws.writeTenant(id, tenantYaml(id, 'Memo v2', 'infrastructure:\n  gcp: { project_id: p, dataset: d }\n'));
    // Seen when planning (not only by the write's compare-and-set): the plan's reason says so.
    expect((await s.migration.run({ ids: [id] })).items[0]).toMatchObject({ action: 'conflict', reason: expect.stringMatching(/edited in the registry since the last migration/) });
    s.close();
  });

  it('a file that changed while being read (its config no longer what the parse cache described) fails that tenant alone, before any write', async () => {
    const [a, b] = [uniq('changing'), uniq('steady')];
    // Written a minute ago: a file changed in the last seconds is not kept in the parse cache at all.
    const past = new Date(Date.now() - 60_000);
    for (const [id, name] of [[a, 'A'], [b, 'B']]) utimesSync(ws.writeTenant(id, tenantYaml(id, name)), past, past);
    const cacheHome = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-xdg-'));
    try {
      const s = wireServices({ registry, tenantsDir: ws.tenantsDir, env: { XDG_CACHE_HOME: cacheHome } });
      await s.migration.run({ dryRun: true });
      // The index says one thing about a's file, and its config is no longer kept: it must be read again, and it differs.
      const dir = path.join(cacheHome, 'tenantctl');
      const index = readdirSync(dir).find((f) => f.startsWith('tenants-') && !f.endsWith('.configs.json'))!;
      const data = JSON.parse(readFileSync(path.join(dir, index), 'utf8'));
      // (Entries are [stamp, row hash, flags, ...] under the file's name in the tenants directory.)
      data.entries[`${a}.yaml`][1] = 'f'.repeat(64);
      writeFileSync(path.join(dir, index), JSON.stringify(data));
      rmSync(path.join(dir, index.replace(/\.json$/, '.configs.json')));
      const again = wireServices({ registry, tenantsDir: ws.tenantsDir, env: { XDG_CACHE_HOME: cacheHome } });
      const r = await again.migration.run();
      expect(r.items.find((i) => i.id === a)).toMatchObject({ action: 'error', failure: 'bad-input', reason: expect.stringMatching(/changed while it was being read; run again/) });
      expect(r.items.find((i) => i.id === b)).toMatchObject({ action: 'create', written: true });
      expect(await store.getTenant(a)).toBeUndefined();
      expect(migrationExitCode(r)).toBe(4);
      s.close();
      again.close();
    } finally {
      rmSync(cacheHome, { recursive: true, force: true });
    }
  });

  it('a row the services wrote (no tenantctl hash) is a conflict unless its content already matches', async () => {
    const [same, other] = [uniq('same'), uniq('other')];
    ws.writeTenant(same, tenantYaml(same, 'Same'));
    ws.writeTenant(other, tenantYaml(other, 'Mine'));
    await store.db.query(`INSERT INTO tenants (id, name, config_source, tenant_config) VALUES ($1, 'Same', 'database', '{}'), ($2, 'Theirs', 'database', '{}')`, [same, other]);
    const s = wireServices({ registry, tenantsDir: ws.tenantsDir });
    const r = await s.migration.run({ ids: [same, other] });
    expect(r.items.map((i) => i.action)).toEqual(['update', 'conflict']);
    expect((await store.getTenant(same))!.tenantctl_hash).not.toBeNull();
    expect((await s.migration.run({ ids: [same] })).items[0].action).toBe('unchanged');
    s.close();
  });

  it('a services\' row not migrated yet (config_source yaml) is updated from YAML, not a conflict: the first migration of an existing database', async () => {
    const id = uniq('legacy');
    ws.writeTenant(id, tenantYaml(id, 'From YAML'));
    await store.db.query(`INSERT INTO tenants (id, name, config_source, tenant_config) VALUES ($1, 'Old', 'yaml', '{"x":1}')`, [id]);
    const s = wireServices({ registry, tenantsDir: ws.tenantsDir });
    const r = await s.migration.run({ ids: [id] });
    expect(r.items[0]).toMatchObject({ id, action: 'update', reason: 'registry row was not migrated yet', written: true });
    expect(migrationExitCode(r)).toBe(0);
    expect(await store.getTenant(id)).toMatchObject({ name: 'From YAML', config_source: 'database' });
    s.close();
  });

  it('a bad file is reported as file:line and nothing of that tenant is written; the others are', async () => {
    const [good, bad] = [uniq('good'), uniq('bad')];
    ws.writeTenant(good, tenantYaml(good));
    ws.writeTenant(bad, `client:\n  id: ${bad}\n  name: "unterminated\n`);
    const s = wireServices({ registry, tenantsDir: ws.tenantsDir });
    const r = await s.migration.run();
    expect(r.items.find((i) => i.id === bad)).toMatchObject({ action: 'error', reason: expect.stringMatching(new RegExp(`${bad}\\.yaml:\\d+: `)) });
    expect(await store.getTenant(bad)).toBeUndefined();
    expect(await store.getTenant(good)).toBeDefined();
    expect(migrationExitCode(r)).toBe(4);
    const onlyBad = await s.migration.run({ ids: [bad] });
    expect(migrationExitCode(onlyBad)).toBe(2);
    s.close();
  });

  it('a tenant with two files (both layouts) is an error of its own; the others are written, not the whole batch lost', async () => {
    const [dup, fine] = [uniq('dup'), uniq('fine')];
    ws.writeTenant(fine, tenantYaml(fine, 'Fine'));
    ws.writeTenant(dup, tenantYaml(dup, 'Flat'));
    ws.writeTenant(dup, tenantYaml(dup, 'Nested'), `${dup}/client.yaml`);
    try {
      const s = wireServices({ registry, tenantsDir: ws.tenantsDir });
      const r = await s.migration.run();
      s.close();
      const items = r.items.filter((i) => i.id === dup);
      expect(items).toHaveLength(1);
      expect(items[0]).toMatchObject({ action: 'error', reason: expect.stringMatching(new RegExp(`tenant ${dup} has 2 files \\(.*${dup}\\.yaml, .*${dup}/client\\.yaml\\): keep one`)) });
      expect(await store.getTenant(dup)).toBeUndefined();
      expect(await store.getTenant(fine)).toMatchObject({ name: 'Fine' });
      expect(migrationExitCode(r)).toBe(4);
      // Named on the command line: the same error, nothing written.
      const s2 = wireServices({ registry, tenantsDir: ws.tenantsDir });
      const named = await s2.migration.run({ ids: [dup] });
      s2.close();
      expect(named.items.filter((i) => i.id === dup)).toEqual([expect.objectContaining({ action: 'error', reason: expect.stringMatching(/has 2 files/) })]);
      expect(await store.getTenant(dup)).toBeUndefined();
    } finally {
      rmSync(path.join(ws.tenantsDir, dup), { recursive: true, force: true });
    }
  });

  it('a tenant folder with both client.yaml and client.yml is the same error (client.yml was left unread without a word: a probe)', async () => {
    const two = uniq('two');
    ws.writeTenant(two, tenantYaml(two, 'From yaml'), `${two}/client.yaml`);
    ws.writeTenant(two, tenantYaml(two, 'From yml'), `${two}/client.yml`);
    try {
      const s = wireServices({ registry, tenantsDir: ws.tenantsDir });
      const r = await s.migration.run();
      s.close();
      expect(r.items.filter((i) => i.id === two)).toEqual([
        expect.objectContaining({ action: 'error', reason: expect.stringMatching(new RegExp(`tenant ${two} has 2 files \\(.*${two}/client\\.yaml, .*${two}/client\\.yml\\): keep one`)) }),
      ]);
      expect(await store.getTenant(two)).toBeUndefined();
    } finally {
      rmSync(path.join(ws.tenantsDir, two), { recursive: true, force: true });
    }
  });

  it('a NUL character or an unpaired surrogate (YAML escapes) fails that tenant alone as file:line; the batch is written', async () => {
    const [nul, lone, fine] = [uniq('nul'), uniq('lone'), uniq('fine')];
    ws.writeTenant(nul, tenantYaml(nul, 'Nul', 'notes:\n  text: "a\\0b"\n'));
    ws.writeTenant(lone, tenantYaml(lone, 'Lone', 'branding:\n  "\\ud800": x\n'));
    ws.writeTenant(fine, tenantYaml(fine, 'Fine', 'notes: { text: "tab\\there, \\u00e9 and \\U0001F600" }\n'));
    try {
      const s = wireServices({ registry, tenantsDir: ws.tenantsDir });
      const r = await s.migration.run({ ids: [nul, lone, fine] });
      s.close();
      expect(r.items.find((i) => i.id === nul)).toMatchObject({ action: 'error', reason: expect.stringMatching(new RegExp(`${nul}\\.yaml:5: notes\\.text holds a NUL character`)) });
      expect(r.items.find((i) => i.id === lone)).toMatchObject({ action: 'error', reason: expect.stringMatching(/branding\.\S+ holds a NUL character or an unpaired surrogate/) });
      expect(await store.getTenant(nul)).toBeUndefined();
      expect((await store.getTenant(fine))?.tenant_config).toMatchObject({ notes: { text: 'tab\there, \u00e9 and \u{1F600}' } });
    } finally {
      for (const id of [nul, lone]) rmSync(path.join(ws.tenantsDir, `${id}.yaml`), { force: true });
    }
  });

  it('with Redis down the registry is still written; the report says the cache was not invalidated (exit 4)', async () => {
    const id = uniq('nocache');
    ws.writeTenant(id, tenantYaml(id));
    const s = wireServices({ redisUrl: `redis://127.0.0.1:${await freePort()}`, registry, tenantsDir: ws.tenantsDir, timeoutMs: 300 });
    const r = await s.migration.run();
    expect(r.items[0]).toMatchObject({ written: true, cacheInvalidated: false });
    expect(migrationExitCode(r)).toBe(4);
    s.close();
  });

  it('a write that fails other than by the registry (here a throwing progress callback) is the run\'s error: never lost while the next batch is read', async () => {
    const ids = Array.from({ length: MIGRATION_BATCH + 100 }, (_, i) => `bulk-${String(i).padStart(4, '0')}`);
    for (const id of ids) ws.writeTenant(id, tenantYaml(id));
    const s = wireServices({ registry, tenantsDir: ws.tenantsDir });
    try {
      // Before: the rejection of the batch in flight went unhandled and the run ended "done" with exit 0.
      await expect(s.migration.run({ progress: () => { throw new Error('progress broke'); } })).rejects.toThrow('progress broke');
      // The batch itself was written (the callback runs after it), the next one never.
      expect(await store.getTenant(ids[0])).toBeDefined();
      expect(await store.getTenant(ids.at(-1)!)).toBeUndefined();
    } finally {
      s.close();
    }
  });

  it('a run stopped before its first batch names the catalogue and every tenant: not written (a dry run: not planned) or not read', async () => {
    const [a, b] = [uniq('early'), uniq('early')];
    ws.writeTenant(a, tenantYaml(a));
    ws.writeTenant(b, tenantYaml(b));
    ws.writeTenant('tiers', 'features: [has_ai]\ntiers:\n  core: { features: [has_ai], max_devices: 2 }\n');
    const stopped = new AbortController();
    stopped.abort('SIGINT');
    const s = wireServices({ registry, tenantsDir: ws.tenantsDir });
    try {
      for (const dryRun of [false, true]) {
        const err = await s.migration.run({ dryRun, signal: stopped.signal }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(InterruptedError);
        const items = ((err as InterruptedError).partial as MigrationReport).items;
        const first = `${dryRun ? 'not planned' : 'not written'}: interrupted by SIGINT first`;
        expect(items.map((i) => [i.kind, i.id, i.action, i.reason])).toEqual([
          ['catalogue', 'tiers', 'error', first],
          ...[a, b].sort().map((id) => ['tenant', id, 'error', 'not read: interrupted by SIGINT first']),
        ]);
      }
      // A program's own abort (no signal: it was said to be SIGINT).
      const own = new AbortController();
      own.abort();
      const err = await s.migration.run({ signal: own.signal }).catch((e: unknown) => e);
      expect(err).toMatchObject({ signal: 'abort', exitCode: 130, message: expect.stringMatching(/^aborted: /) });
      expect(((err as InterruptedError).partial as MigrationReport).items.map((i) => i.reason)).toContain('not read: aborted first');
      expect(await store.getTenant(a)).toBeUndefined();
    } finally {
      s.close();
    }
  });
});
