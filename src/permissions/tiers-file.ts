import { existsSync } from 'node:fs';
import path from 'node:path';
import { TenantFileError } from '../errors.js';
import { lineOfPath, readYamlFile } from '../yaml/yaml-file.js';
import type { Catalogue, TierDefinition } from './model.js';

/** PostgreSQL's integer, the type of permission_tiers.max_devices. */
const MAX_INT4 = 2_147_483_647;

/** The catalogue file in the tenants directory. */
export const TIERS_FILE = 'tiers.yaml';
/** Feature names: `has_` plus a plain identifier. */
export const FEATURE_NAME = /^has_[a-z0-9_]{1,60}$/;
const TIER_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

export function tiersFilePath(tenantsDir: string): string | undefined {
  for (const name of [TIERS_FILE, 'tiers.yml']) {
    const p = path.join(tenantsDir, name);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/**
 * Loads `tiers.yaml`: `features: [...]` (the catalogue) and
 * `tiers: { name: { features: [...], max_devices: n | null } }`. A tier naming
 * a feature outside the catalogue, or anything malformed, is a TenantFileError (`file:line: reason`).
 */
export function loadTiersFile(file: string): Catalogue {
  const { text, doc } = readYamlFile(file);
  const fail = (p: string[], reason: string): never => {
    throw new TenantFileError(file, lineOfPath(text, p), reason);
  };
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) fail([], 'must be a mapping with features and tiers');
  const { features, tiers, ...rest } = doc as Record<string, unknown>;
  for (const k of Object.keys(rest)) fail([k], `unknown key "${k}" (expected features, tiers)`);
  if (!Array.isArray(features)) fail(['features'], 'features must be a list of feature names');
  const catalogue = new Set<string>();
  for (const f of features as unknown[]) {
    if (typeof f !== 'string' || !FEATURE_NAME.test(f)) fail(['features'], `feature ${JSON.stringify(f)} must look like has_something`);
    if (catalogue.has(f as string)) fail(['features'], `feature ${f} is listed twice`);
    catalogue.add(f as string);
  }
  if (!tiers || typeof tiers !== 'object' || Array.isArray(tiers)) fail(['tiers'], 'tiers must map tier names to { features, max_devices }');
  const out: Record<string, TierDefinition> = {};
  for (const [name, def] of Object.entries(tiers as Record<string, unknown>)) {
    if (!TIER_NAME.test(name)) fail(['tiers', name], `tier name "${name}" is not a plain name`);
    // A name every object already has (`__proto__`, `toString`, `constructor`...) would be read as that.
    if (name in Object.prototype) fail(['tiers', name], `tier name "${name}" is reserved (a built-in name of JavaScript objects)`);
    if (!def || typeof def !== 'object' || Array.isArray(def)) fail(['tiers', name], `tier ${name} must be { features, max_devices }`);
    const { features: tf = [], max_devices = null, ...extra } = def as Record<string, unknown>;
    for (const k of Object.keys(extra)) fail(['tiers', name, k], `tier ${name}: unknown key "${k}"`);
    if (!Array.isArray(tf)) fail(['tiers', name, 'features'], `tier ${name}: features must be a list`);
    for (const f of tf as unknown[]) {
      if (typeof f !== 'string' || !catalogue.has(f)) fail(['tiers', name, 'features'], `tier ${name} names feature ${JSON.stringify(f)}, which is not in the catalogue`);
    }
    // At most the registry's integer column holds (permission_tiers.max_devices): 3000000000 passed here and
    // failed the whole batch it was written with, exit 3 (a probe).
    if (max_devices !== null && (!Number.isSafeInteger(max_devices) || (max_devices as number) < 0 || (max_devices as number) > MAX_INT4)) {
      fail(['tiers', name, 'max_devices'], `tier ${name}: max_devices must be a whole number from 0 to ${MAX_INT4}, or null (unlimited)`);
    }
    out[name] = { name, features: [...new Set(tf as string[])].sort(), max_devices: max_devices as number | null };
  }
  return { features: [...catalogue].sort(), tiers: out };
}
