import { unusableRegistry, type RegistrySpec } from './registry-spec.js';
import type { Registry } from './registry-store.js';
import { DEFAULT_REGISTRY_TIMEOUT_MS } from './postgres-store.js';

export interface OpenRegistryOptions {
  /**
   * `read`: change nothing (an embedded registry that does not exist is a
   * BackendUnavailableError with reason `not-configured`); `write`: create the
   * embedded registry if needed and make the schema current.
   * @default 'read'
   */
  mode?: 'read' | 'write';
  /** Connect, lock and statement timeout, ms. @default 5000 */
  timeoutMs?: number;
  /** Told when an embedded registry is being created (its initdb takes seconds). */
  onCreate?: (dir: string) => void;
  /** Where a PostgreSQL URL's missing parts (user, password, PGSSLMODE...) come from. @default process.env */
  env?: NodeJS.ProcessEnv;
  /** Gives up the opening (a connect to a silent server, a wait for an embedded registry's lock) when it aborts. */
  signal?: AbortSignal;
}

/** Opens the registry a spec names, loading only that backend's library. */
export async function openRegistry(spec: RegistrySpec, options: OpenRegistryOptions = {}): Promise<Registry> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_REGISTRY_TIMEOUT_MS;
  const write = options.mode === 'write';
  let store: Registry;
  switch (spec.kind) {
    case 'embedded':
      store = await (await import('./pglite-store.js')).openPgliteStore(spec.dir, { create: write, timeoutMs, onCreate: options.onCreate, signal: options.signal });
      break;
    case 'memory':
      store = await (await import('./pglite-store.js')).openPgliteStore(undefined, { timeoutMs });
      break;
    case 'postgres':
      store = await (await import('./postgres-store.js')).openPostgresStore(spec.url, timeoutMs, options.env, options.signal);
      break;
    case 'supabase':
      store = await (await import('./supabase-store.js')).SupabaseRegistryStore.open(spec.url, spec.key, timeoutMs);
      break;
    case 'invalid':
      throw unusableRegistry(spec);
  }
  if (write || spec.kind === 'memory') {
    try {
      await store.ensureSchema();
    } catch (err) {
      await store.close();
      throw err;
    }
  }
  return store;
}
