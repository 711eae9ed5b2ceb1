import { cpSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';

/**
 * What PGlite throws is not always an Error: its emscripten file system throws an `ErrnoError` (a plain
 * object: no message, no stack), which the CLI printed as "internal error: [object Object]", exit 70. It is
 * a registry failure (exit 3) with words. The ErrnoError here is a real one: PGlite given a data directory
 * through a symlink fails with it (which is also why tenantctl gives PGlite the directory's real path).
 */
describe('PGlite failures that are not Errors', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-pglite-errors-'));
  const registry = path.join(dir, 'registry');
  const link = path.join(dir, 'link');
  let thrown: unknown;
  beforeAll(async () => {
    cpSync(inject('pgliteTemplate'), registry, { recursive: true });
    symlinkSync(registry, link);
    const { PGlite } = await import('@electric-sql/pglite');
    thrown = await PGlite.create(link).then(
      async (db) => {
        await db.close();
        return undefined;
      },
      (err: unknown) => err,
    );
  }, 60_000);
  afterEach(() => {
    vi.doUnmock('@electric-sql/pglite');
    vi.resetModules();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('PGlite itself throws a non-Error for a data directory given through a symlink (the case this is about)', () => {
    expect(thrown).toBeDefined();
    expect(thrown).not.toBeInstanceOf(Error);
    expect(String(thrown)).toBe('[object Object]');
    expect(thrown).toMatchObject({ name: 'ErrnoError', errno: 44 });
  });

  it('readableThrown / pgliteFailure: a readable Error, and a registry failure the CLI maps to exit 3', async () => {
    const { readableThrown, pgliteFailure } = await import('../../src/registry/pglite-store.js');
    const { BackendUnavailableError } = await import('../../src/errors.js');
    const { exitCodeFor } = await import('../../src/cli/exit-codes.js');
    const readable = readableThrown(thrown);
    expect(readable).toBeInstanceOf(Error);
    expect(readable.message).toMatch(/^PGlite file system error ENOENT \(emscripten errno 44\)/);
    expect(readable.cause).toBe(thrown);
    const failure = pgliteFailure(thrown, 'the embedded registry /x could not be opened');
    expect(failure).toBeInstanceOf(BackendUnavailableError);
    expect(failure).toMatchObject({ backend: 'registry', reason: 'failed' });
    const mapped = exitCodeFor(failure);
    expect(mapped.code).toBe(3);
    expect(mapped.message).toMatch(/^the embedded registry \/x could not be opened: PGlite file system error ENOENT/);
    expect(mapped.message).not.toContain('[object Object]');
    // Other shapes: an Error stays itself; an object with a message, a string, an object without one.
    const plain = new Error('boom');
    expect(readableThrown(plain)).toBe(plain);
    expect(readableThrown({ message: 'wasm said no' }).message).toBe('wasm said no');
    expect(readableThrown('aborted').message).toBe('PGlite failed: aborted');
    expect(readableThrown({ name: 'ExitStatus', status: 1 }).message).toBe('PGlite failed: ExitStatus {"name":"ExitStatus","status":1}');
    expect(readableThrown({ errno: 2 }).message).toMatch(/^PGlite file system error EACCES/);
  });

  it('openPgliteStore: a non-Error from PGlite.create is exit 3 naming the registry; one from a query is a registry failure with words', async () => {
    let failCreate = true;
    vi.doMock('@electric-sql/pglite', () => ({
      PGlite: {
        defaultStartParams: [],
        create: async () => {
          if (failCreate) throw thrown;
          return {
            query: async () => {
              throw thrown;
            },
            exec: async () => undefined,
            close: async () => undefined,
          };
        },
      },
    }));
    const { openPgliteStore } = await import('../../src/registry/pglite-store.js');
    const { BackendUnavailableError } = await import('../../src/errors.js');
    const { exitCodeFor } = await import('../../src/cli/exit-codes.js');

    const opened = await openPgliteStore(registry, { timeoutMs: 1000 }).catch((e: unknown) => e);
    expect(opened).toBeInstanceOf(BackendUnavailableError);
    expect(exitCodeFor(opened)).toEqual({ code: 3, message: expect.stringMatching(new RegExp(`^the embedded registry ${registry} could not be opened: PGlite file system error ENOENT`)) as unknown });

    failCreate = false;
    const store = await openPgliteStore(registry, { timeoutMs: 1000 });
    try {
      const listed = await store.listActiveTenants().catch((e: unknown) => e);
      expect(listed).toBeInstanceOf(BackendUnavailableError);
      const { code, message } = exitCodeFor(listed);
      expect(code).toBe(3);
      expect(message).toMatch(/failed while listing tenants: PGlite file system error ENOENT/);
      expect(message).not.toContain('[object Object]');
    } finally {
      await store.close();
    }
  });
});
