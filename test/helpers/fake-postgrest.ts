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
  rows: Map<string, Record<string, unknown>>;
  requests: Array<{ method: string; path: string }>;
  /** Simulate row-level security hiding rows from updates. */
  rlsHidesUpdates: boolean;
  /** Simulate a project where `tenantctl schema` was not applied. */
  missingColumn: boolean;
  close(): Promise<void>;
}

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
  const state = { rows: new Map<string, Record<string, unknown>>(), requests: [] as FakePostgrest['requests'], rlsHidesUpdates: false, missingColumn: false };
  const server = http.createServer((req, res) => {
    const u = new URL(req.url!, 'http://x');
    state.requests.push({ method: req.method!, path: u.pathname + u.search });
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const send = (status: number, data: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
        res.end(JSON.stringify(data));
      };
      if (req.headers.apikey !== key || req.headers.authorization !== `Bearer ${key}`) return send(401, { message: 'Invalid API key' });
      if (u.pathname !== '/rest/v1/tenants') return send(404, { code: '42P01', message: `relation "${u.pathname}" does not exist` });
      const select = u.searchParams.get('select') ?? '*';
      const columns = select === '*' ? undefined : select.split(',');
      for (const c of columns ?? []) {
        if (!COLUMNS.has(c) || (state.missingColumn && c === 'tenantctl_hash')) {
          return send(400, { code: '42703', message: `column tenants.${c} does not exist` });
        }
      }
      const filters: Array<(r: Record<string, unknown>) => boolean> = [];
      for (const [k, v] of u.searchParams) {
        if (['select', 'order', 'offset', 'limit', 'columns'].includes(k)) continue;
        if (v.startsWith('eq.')) filters.push((r) => String(r[k]) === v.slice(3));
        else if (v.startsWith('in.')) {
          const set = new Set(parseList(v.slice(3)));
          filters.push((r) => set.has(String(r[k])));
        } else return send(400, { code: 'PGRST100', message: `unsupported filter ${k}=${v}` });
      }
      const project = (r: Record<string, unknown>) => (columns ? Object.fromEntries(columns.map((c) => [c, r[c] ?? null])) : r);
      let matched = [...state.rows.values()].filter((r) => filters.every((f) => f(r)));
      if (req.method === 'GET') {
        if (u.searchParams.get('order')?.startsWith('id')) matched.sort((a, b) => (String(a.id) < String(b.id) ? -1 : 1));
        const offset = Number(u.searchParams.get('offset') ?? 0);
        const limit = u.searchParams.has('limit') ? Number(u.searchParams.get('limit')) : matched.length;
        matched = matched.slice(offset, offset + limit);
        return send(200, matched.map(project));
      }
      const payload = body ? JSON.parse(body) : {};
      if (req.method === 'POST') {
        const list = Array.isArray(payload) ? payload : [payload];
        for (const r of list) {
          if (state.rows.has(r.id)) return send(409, { code: '23505', message: 'duplicate key value violates unique constraint "tenants_pkey"' });
        }
        const now = new Date().toISOString();
        const inserted = list.map((r) => ({ status: 'active', config_source: 'yaml', created_at: now, updated_at: now, plan: null, features_enabled: null, tenantctl_hash: null, ...r }));
        for (const r of inserted) state.rows.set(r.id, r);
        return send(201, inserted.map(project));
      }
      if (req.method === 'PATCH') {
        if (state.rlsHidesUpdates) return send(200, []);
        for (const r of matched) Object.assign(r, payload);
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
