import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadBundle } from '../../src/cli/load-bundle.js';

describe('loadBundle: the code cache of a bundle', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-bundle-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is one file per bundle path: two checkouts of the same bytes do not share one (stack traces named the other checkout\'s files)', () => {
    const env = { HOME: dir, XDG_CACHE_HOME: path.join(dir, 'cache') };
    const files = ['a', 'b'].map((checkout) => {
      mkdirSync(path.join(dir, checkout));
      const bundle = path.join(dir, checkout, 'bundle.cjs');
      writeFileSync(bundle, 'module.exports = { where: __filename };\n');
      const loaded = loadBundle<{ where: string }>(bundle, { env, kind: 'test', contentHash: '0123456789abcdef' });
      expect(loaded.exports.where).toBe(bundle);
      return loaded.cacheFile;
    });
    expect(files[0]).not.toBe(files[1]);
    for (const f of files) expect(path.basename(f)).toMatch(/^code-test-\d+-0123456789abcdef-[0-9a-f]{8}\.bin$/);
  });
});
