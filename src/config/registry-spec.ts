import path from 'node:path';
import { UsageError } from '../errors.js';

/** Where the tenant registry lives. */
export type RegistrySpec =
  | { kind: 'embedded'; dir: string }
  | { kind: 'memory' }
  | { kind: 'postgres'; url: string }
  | { kind: 'supabase'; url: string; key: string };

/** The default embedded registry directory, relative to the working directory. */
export const DEFAULT_EMBEDDED_DIR = path.join('.tenantctl', 'registry');

/** The service-role key under the names deployments use (DESIGN.md, "Registry"). */
export function supabaseKeyFromEnv(env: NodeJS.ProcessEnv): string | undefined {
  return env.SUPABASE_SERVICE_ROLE_KEY || env.SUPABASE_SERVICE_KEY || env.SUPABASE_KEY || undefined;
}

/**
 * Parses a `--registry` value: `postgres://…`, `https://<project>.supabase.co`
 * (key from the environment), `embedded[:DIR]`, `memory:` (throw-away, for tests), or a directory.
 */
export function parseRegistrySpec(value: string, env: NodeJS.ProcessEnv, cwd: string): RegistrySpec {
  const v = value.trim();
  if (/^postgres(ql)?:\/\//i.test(v)) return { kind: 'postgres', url: v };
  if (/^https?:\/\//i.test(v)) {
    const key = supabaseKeyFromEnv(env);
    if (!key) {
      throw new UsageError(
        'a Supabase registry needs SUPABASE_SERVICE_ROLE_KEY (or SUPABASE_SERVICE_KEY / SUPABASE_KEY) in the environment',
      );
    }
    return { kind: 'supabase', url: v.replace(/\/+$/, ''), key };
  }
  if (v === 'memory:' || v === 'memory') return { kind: 'memory' };
  if (v === '') throw new UsageError('--registry needs a value');
  const dir = v === 'embedded' ? DEFAULT_EMBEDDED_DIR : v.replace(/^embedded:/, '');
  return { kind: 'embedded', dir: path.resolve(cwd, dir) };
}

/** A registry spec for messages: credentials masked. */
export function describeRegistry(spec: RegistrySpec): string {
  switch (spec.kind) {
    case 'embedded':
      return `embedded PGlite (${spec.dir})`;
    case 'memory':
      return 'in-memory PGlite';
    case 'postgres':
      return `postgres ${maskUrl(spec.url)}`;
    case 'supabase':
      return `supabase ${maskUrl(spec.url)}`;
  }
}

/** Replaces the password (and a lone user-info token) of a URL with `****`. */
export function maskUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)([^@/]*)@/i, (_m, scheme: string, userinfo: string) => {
    const colon = userinfo.indexOf(':');
    if (colon < 0) return `${scheme}****@`;
    return `${scheme}${userinfo.slice(0, colon)}:****@`;
  });
}
