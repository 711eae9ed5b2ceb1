import type { RegistrySpec } from './registry-spec.js';
import type { Registry } from './registry-store.js';

/** Opens the registry a spec names, loading only that backend's library. */
export async function openRegistry(spec: RegistrySpec): Promise<Registry> {
  switch (spec.kind) {
    case 'embedded':
      return (await import('./pglite-store.js')).openPgliteStore(spec.dir);
    case 'memory':
      return (await import('./pglite-store.js')).openPgliteStore(undefined);
    case 'postgres':
      return (await import('./postgres-store.js')).openPostgresStore(spec.url);
    case 'supabase':
      return (await import('./supabase-store.js')).SupabaseRegistryStore.open(spec.url, spec.key);
  }
}
