import { setFlagsFromString } from 'node:v8';

/**
 * For a command that streams work past in batches (millions of keys; 10,000
 * tenants read, planned and written): V8 doubles its young generation each
 * time the survivors of its scavenges add up to its size, which over a long
 * pass they always do, up to 32 MB of RSS that holds nothing. Kept at its
 * starting size, `cache-info --by tenant` over 2M keys peaks ~30 MB lower at
 * the same speed, a 10,000-tenant migration ~15 MB lower, no slower
 * (bench/cache-bulk.js, bench/migration.js). Process-wide, so the CLI sets it
 * per command, never the library.
 */
export function keepYoungGenerationSmall(): void {
  setFlagsFromString('--semi-space-growth-factor=1');
}
