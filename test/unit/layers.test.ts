import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/setup.js';

/**
 * The layers, bottom to top: a module may import its own layer or a lower one,
 * never a higher one (so the cache never reaches configuration, permissions
 * never reach the tenant source). ioredis is imported by the one adapter only.
 */
const LAYERS: Array<[rank: number, prefix: string]> = [
  [0, 'errors.ts'], [0, 'redact.ts'], [0, 'user-cache.ts'], [0, 'node-crypto.ts'], [0, 'make-directory.ts'], [0, 'regular-file.ts'], [0, 'shown-path.ts'], [0, 'working-directory.ts'],
  [1, 'keys/'], [1, 'yaml/'], [1, 'json/'],
  [2, 'permissions/'], [2, 'cache/'],
  [3, 'registry/'],
  [4, 'tenants/'],
  [5, 'config/'],
  [6, 'services/'],
  [7, 'tenantctl.ts'], [7, 'index.ts'],
  [8, 'cli/'],
];

function rankOf(rel: string): number {
  const hit = LAYERS.find(([, p]) => rel === p || rel.startsWith(p));
  if (!hit) throw new Error(`no layer for src/${rel}: add it to LAYERS`);
  return hit[0];
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [],
  );
}

const SRC = path.join(ROOT, 'src');
const IMPORT = /(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

describe('layering', () => {
  const files = sources(SRC);

  it('no module imports a higher layer', () => {
    const violations: string[] = [];
    for (const file of files) {
      const rel = path.relative(SRC, file).split(path.sep).join('/');
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(IMPORT)) {
        const spec = m[1] ?? m[2];
        if (!spec.startsWith('.')) continue;
        const target = path.relative(SRC, path.resolve(path.dirname(file), spec)).split(path.sep).join('/').replace(/\.js$/, '.ts');
        if (rankOf(target) > rankOf(rel)) violations.push(`${rel} imports ${target}`);
      }
    }
    expect(violations).toEqual([]);
  });

  it('node:crypto is loaded on first use, through node-crypto.ts only (a cache hit never needs it)', () => {
    const importers = files
      .filter((f) => /from\s*['"](?:node:)?crypto['"]|import\(\s*['"](?:node:)?crypto['"]\s*\)/.test(readFileSync(f, 'utf8').replace(/import type[^;]*;/g, '')))
      .map((f) => path.relative(SRC, f).split(path.sep).join('/'));
    expect(importers).toEqual([]);
  });

  it('only the Redis adapter imports ioredis', () => {
    const importers = files
      .filter((f) => /from\s*['"]ioredis['"]|import\(\s*['"]ioredis['"]\s*\)/.test(readFileSync(f, 'utf8')))
      .map((f) => path.relative(SRC, f).split(path.sep).join('/'));
    expect(importers).toEqual(['cache/ioredis-store.ts']);
  });
});
