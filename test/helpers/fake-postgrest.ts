import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local HTTP server that answers the subset of PostgREST that the Supabase
 * store uses (select with eq / in filters, order, offset/limit, insert and
 * update with return=representation), with PostgREST's error shapes. Used by
 * the Supabase *contract* tests: supabase-js itself runs unmodified against it.
 */
export interface FakePostgrest {
  url: string;
  key: string;
  /** The `tenants` table's rows by id. */
  rows: Map<string, Record<string, unknown>>;
  /** Every table's rows by primary key. */
  tables: Map<string, Map<string, Record<string, unknown>>>;
  requests: Array<{ method: string; path: string }>;
  /** Simulate row-level security hiding rows from updates. */
  rlsHidesUpdates: boolean;
  /** Simulate a project where `tenantctl schema` was not applied. */
  missingColumn: boolean;
  /** Reads that asked for the total (Prefer: count=exact). */
  counts: number;
  /** A request this returns true for fails with 503 before it is applied (a backend lost midway). */
  failWhen?: (method: string, path: string) => boolean;
  /**
   * A write this returns words for is refused with them before it is applied, as PostgreSQL refuses a row
   * for its content (a services' CHECK constraint: 23514, PostgREST's 400); `body` is the request's JSON.
   */
  refuseWhen?: (method: string, path: string, body: unknown) => string | undefined;
  /** A request this returns true for is applied, then its connection dropped without an answer (a network cut). */
  loseAnswerWhen?: (method: string, path: string) => boolean;
  /** Simulate a services' table without the unique key an upsert needs (PostgREST answers 42P10). */
  noUniqueKey: Set<string>;
  /**
   * A jsonb column's text as the server writes it out, by `table:key:column` (a jsonb keeps `1.0`, which
   * the parsed rows here cannot): what a `::text` cast in select answers; else the value's JSON.
   */
  jsonText: Map<string, string>;
  close(): Promise<void>;
}

/** Supabase's default `max_rows`: no response carries more rows. */
export const MAX_ROWS = 1000;

/** Primary keys of the tables the stores use. */
const PRIMARY_KEYS: Record<string, string[]> = {
  tenants: ['id'],
  permission_features: ['name'],
  permission_tiers: ['name'],
  business_subscriptions: ['business_id'],
  business_feature_overrides: ['business_id', 'feature'],
  tenantctl_meta: ['key'],
  tenantctl_outbox: ['kind', 'target'],
};

const COLUMNS = new Set([
  'id', 'name', 'short_name', 'timezone', 'currency', 'primary_email', 'gcp_project_id', 'gcp_dataset', 'config_source',
  'tenant_config', 'status', 'plan', 'features_enabled', 'created_at', 'updated_at', 'tenantctl_hash',
]);

function parseList(v: string): string[] {
  const inner = v.replace(/^\(/, '').replace(/\)$/, '');
  const out: string[] = [];
  for (const m of inner.matchAll(/"((?:[^"\\]|\\.)*)"|([^,]+)/g)) out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]);
  return out;
}

export async function startFakePostgrest(key = 'service-role-key'): Promise<FakePostgrest> {
  const tables = new Map(Object.keys(PRIMARY_KEYS).map((t) => [t, new Map<string, Record<string, unknown>>()]));
  const state = { rows: tables.get('tenants')!, tables, requests: [] as FakePostgrest['requests'], rlsHidesUpdates: false, missingColumn: false, counts: 0, failWhen: undefined as FakePostgrest['failWhen'], refuseWhen: undefined as FakePostgrest['refuseWhen'], loseAnswerWhen: undefined as FakePostgrest['loseAnswerWhen'], noUniqueKey: new Set<string>(), jsonText: new Map<string, string>() };
  const server = http.createServer((req, res) => {
    const u = new URL(req.url!, 'http://x');
    state.requests.push({ method: req.method!, path: u.pathname + u.search });
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const lose = state.loseAnswerWhen?.(req.method!, u.pathname + u.search);
      const send = (status: number, data: unknown) => {
        if (lose) return void req.socket.destroy();
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify(data));
      };
      if (req.headers.apikey !== key || req.headers.authorization !== `Bearer ${key}`) return send(401, { message: 'Invalid API key' });
      if (state.failWhen?.(req.method!, u.pathname + u.search)) return send(503, { message: 'upstream connect error' });
      const refusal = req.method !== 'GET' ? state.refuseWhen?.(req.method!, u.pathname + u.search, body ? JSON.parse(body) : undefined) : undefined;
      if (refusal) return send(400, { code: '23514', message: refusal });
      const tableName = u.pathname.replace(/^\/rest\/v1\//, '');
      const table = tables.get(tableName);
      if (!table) return send(404, { code: '42P01', message: `relation "public.${tableName}" does not exist` });
      const pk = PRIMARY_KEYS[tableName];
      const keyOf = (r: Record<string, unknown>) => pk.map((c) => String(r[c])).join('\u0000');
      // select: `*` and/or columns, each `[alias:]column[::cast]` (PostgREST's syntax; only ::text is cast).
      const items = (u.searchParams.get('select') ?? '*').split(',').map((c) => c.trim());
      const star = items.includes('*');
      const named = items.filter((c) => c !== '*').map((c) => {
        const m = /^(?:(\w+):)?(\w+)(?:::(\w+))?$/.exec(c);
        return { alias: m?.[1] ?? m?.[2] ?? c, column: m?.[2] ?? c, cast: m?.[3] };
      });
      for (const { column: c } of tableName === 'tenants' ? named : []) {
        if (!COLUMNS.has(c) || (state.missingColumn && c === 'tenantctl_hash')) {
          return send(400, { code: '42703', message: `column tenants.${c} does not exist` });
        }
      }
      const filters: Array<(r: Record<string, unknown>) => boolean> = [];
      for (const [k, v] of u.searchParams) {
        if (['select', 'order', 'offset', 'limit', 'columns', 'on_conflict'].includes(k)) continue;
        if (v.startsWith('eq.')) filters.push((r) => String(r[k]) === v.slice(3));
        else if (v === 'is.null') filters.push((r) => r[k] === null || r[k] === undefined);
        else if (v === 'not.is.null') filters.push((r) => r[k] !== null && r[k] !== undefined);
        else if (v.startsWith('in.') || v.startsWith('not.in.')) {
          const negate = v.startsWith('not.');
          const set = new Set(parseList(v.slice(negate ? 7 : 3)));
          filters.push((r) => set.has(String(r[k])) !== negate);
        } else return send(400, { code: 'PGRST100', message: `unsupported filter ${k}=${v}` });
      }
      const asText = (r: Record<string, unknown>, c: string) => {
        const v = r[c];
        return state.jsonText.get(`${tableName}:${keyOf(r)}:${c}`) ?? (v == null ? null : typeof v === 'string' ? v : JSON.stringify(v));
      };
      const project = (r: Record<string, unknown>) => ({
        ...(star ? r : {}),
        ...Object.fromEntries(named.map(({ alias, column, cast }) => [alias, cast === 'text' ? asText(r, column) : r[column] ?? null])),
      });
      let matched = [...table.values()].filter((r) => filters.every((f) => f(r)));
      if (req.method === 'GET') {
        const order = u.searchParams.get('order')?.split('.')[0];
        if (order) matched.sort((a, b) => (String(a[order]) < String(b[order]) ? -1 : 1));
        const offset = Number(u.searchParams.get('offset') ?? 0);
        const limit = u.searchParams.has('limit') ? Number(u.searchParams.get('limit')) : matched.length;
        const total = matched.length;
        // PostgREST's max-rows (Supabase's default: 1,000) caps every answer, whatever the limit asked.
        matched = matched.slice(offset, offset + Math.min(limit, MAX_ROWS));
        // The total only when asked (Prefer: count=exact), as PostgREST does; '*' otherwise.
        const counted = String(req.headers.prefer ?? '').includes('count=exact');
        state.counts += counted ? 1 : 0;
        res.setHeader('content-range', `${matched.length ? `${offset}-${offset + matched.length - 1}` : '*'}/${counted ? total : '*'}`);
        return send(200, matched.map(project));
      }
      const payload = body ? JSON.parse(body) : {};
      if (req.method === 'POST') {
        const list = (Array.isArray(payload) ? payload : [payload]) as Record<string, unknown>[];
        const upsert = /resolution=merge-duplicates/.test(String(req.headers.prefer ?? ''));
        if (upsert && state.noUniqueKey.has(tableName)) {
          return send(400, { code: '42P10', message: 'there is no unique or exclusion constraint matching the ON CONFLICT specification' });
        }
        for (const r of list) {
          if (!upsert && table.has(keyOf(r))) return send(409, { code: '23505', message: `duplicate key value violates unique constraint "${tableName}_pkey"` });
        }
        const now = new Date().toISOString();
        const defaults: Record<string, unknown> = tableName === 'tenants'
          ? { status: 'active', config_source: 'yaml', created_at: now, updated_at: now, plan: null, features_enabled: null, tenantctl_hash: null }
          : {};
        const written = list.map((r) => {
          const merged = { ...defaults, ...(table.get(keyOf(r)) ?? {}), ...r };
          table.set(keyOf(merged), merged);
          return merged;
        });
        return send(201, written.map(project));
      }
      if (req.method === 'PATCH') {
        if (state.rlsHidesUpdates) return send(200, []);
        for (const r of matched) Object.assign(r, payload);
        return send(200, matched.map(project));
      }
      if (req.method === 'DELETE') {
        for (const r of matched) table.delete(keyOf(r));
        if (tableName === 'business_subscriptions') {
          const gone = new Set(matched.map((r) => String(r.business_id)));
          for (const [k, o] of tables.get('business_feature_overrides')!) if (gone.has(String(o.business_id))) tables.get('business_feature_overrides')!.delete(k);
        }
        return send(200, matched.map(project));
      }
      return send(405, { message: 'method not allowed' });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}`,
    key,
    close: () => new Promise<void>((r) => server.close(() => r())),
  }) as FakePostgrest;
}
