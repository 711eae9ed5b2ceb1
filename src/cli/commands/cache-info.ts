import { InvalidArgumentError, Option, type Command } from 'commander';
import type { CacheInfo } from '../../services/cache-info.js';
import { action, idArg, intArg } from '../action.js';
import type { CacheProfile, KeyStats } from '../../services/cache-profile.js';
import { bar, gauge, humanBytes, plural } from '../charts.js';
import type { Output } from '../output.js';
import { own, styled, type Styled } from '../styled.js';
import { BackendUnavailableError, UsageError, describeError } from '../../errors.js';
import { warnMovingSlots } from '../moving-slots.js';
import { backendHint } from '../exit-codes.js';

const BAR = 20;

/** The essentials in under 80 columns; `-o wide` adds the rest; pictures only on a terminal. */
function render(out: Output, info: CacheInfo) {
  if (!info.available) {
    out.table(['field', 'value'], [['backend', info.backend], ['available', 'no'], ['ttl_seconds', info.ttl_seconds], ...(info.error ? [['error', info.error]] : [])]);
    return;
  }
  const s = info.server!;
  const m = info.memory;
  // INFO refused to this user: what it tells is unknown, the counts are not.
  const unknown = 'unknown (INFO refused)';
  const memory = m ? `${humanBytes(m.used_bytes)}${m.max_bytes ? ` of ${humanBytes(m.max_bytes)}` : ' used, no limit'}, ${m.policy}, ${info.redis_evicted_keys} evicted` : unknown;
  const rows: Array<[string, string | number | Styled]> = [
    ['server', `${s.target} · ${s.mode}${m ? ` · Redis ${s.version}` : ''}${s.masters > 1 ? ` · ${s.masters} masters` : ''}`],
    ['latency', `${info.latency_ms} ms`],
    ['memory', out.pictures && m ? styled`${own(gauge(m.used_bytes, m.max_bytes, 12, out.c))} ${memory}` : memory],
    ['hits', info.hits == null ? unknown : `${plural(info.hits, 'hit')}, ${plural(info.misses ?? 0, 'miss', 'misses')} (hit rate ${info.hit_rate_percent}%)`],
    ['keys', `${info.total_keys == null ? '' : `${info.total_keys} in all, `}${info.tool_keys == null ? "the tool's unknown (SCAN refused)" : `${info.tool_keys} the tool's`}`],
  ];
  if (out.wide) {
    rows.push(['ttl_seconds', info.ttl_seconds], ['total_requests', info.total_requests ?? '-'], ['memory_usage_percent', info.memory_usage_percent ?? '-']);
  }
  out.table(['field', 'value'], rows);
  if (!info.families) return;
  const families = Object.entries(info.families);
  // Piped, every family is a row of its own (a script reads zeros too); on a terminal, the empty ones are one line.
  const shown = out.wide || out.rows ? families : families.filter(([, n]) => n > 0);
  const tool = info.tool_keys || 1;
  const share = (n: number) => `${out.pictures ? `${bar(n / tool, BAR)} ` : ''}${Math.round((n / tool) * 100)}%`;
  const body: Array<Array<string | number>> = shown.map(([f, n]) => [f, n, share(n)]);
  const empty = families.length - shown.length;
  if (empty) body.push([`(${empty} more with no keys)`, 0, '']);
  out.table(['family', 'keys', 'share'], body);
}

/** A message as the first clause of a longer line: its own closing full stop dropped (`disabled.; reporting`). */
const asClause = (text: string) => text.replace(/\.\s*$/, '');

/** The TTL spread's cells; keys with no TTL (a leak) are marked with `!`, except piped (a number there). */
const ttlCells = (out: Output, s: KeyStats) => [s.ttl_under_minute, s.ttl_under_hour, s.ttl_later, s.no_ttl && !out.rows ? `${s.no_ttl} !` : s.no_ttl];

/** Where the memory goes: a family table and the top tenants, bars on a terminal, leaks (no TTL) marked. */
function renderProfile(out: Output, p: CacheProfile) {
  const total = p.total.bytes || 1;
  const share = (bytes: number) => `${out.pictures ? `${bar(bytes / total, 12)} ` : ''}${Math.round((bytes / total) * 100)}%`;
  // Piped, every family is a row (zeros too), as plain cache-info lists them.
  const families = out.wide || out.rows ? p.families : p.families.filter((f) => f.keys > 0);
  out.table(
    ['family', 'keys', 'memory', 'share', '<1m', '<1h', 'later', 'no TTL'],
    families.map((f) => [f.family, f.keys, humanBytes(f.bytes), share(f.bytes), ...ttlCells(out, f)]),
  );
  const tenantTable = p.by === 'tenant' || !!p.tenant;
  if (tenantTable) {
    out.table(
      ['tenant', 'keys', 'memory', 'share', '<1m', '<1h', 'later', 'no TTL'],
      p.tenants.map((t) => [t.tenant, t.keys, humanBytes(t.bytes), share(t.bytes), ...ttlCells(out, t)]),
    );
  }
  const tenants = plural(p.tenant_count, 'tenant');
  out.summary(`${plural(p.total.keys, 'key')} of the tool's, ${humanBytes(p.total.bytes)}, ${tenants}${tenantTable && !p.tenant ? ` (top ${p.tenants.length} by memory shown)` : ''}; ${plural(p.total.no_ttl, 'key')} without a TTL`);
  if (p.orphans_unknown) out.summary(`orphans unknown: ${p.orphans_unknown}`);
  else if (p.orphans?.length) {
    out.table(['orphan tenant', 'keys', 'memory', 'why'], p.orphans.map((o) => [o.tenant, o.keys, humanBytes(o.bytes), o.reason]));
    if ((p.orphan_count ?? 0) > p.orphans.length) out.summary(`${p.orphan_count} orphan tenants (the largest ${p.orphans.length} shown)`);
  }
}

/** `cache-info`: availability, server, exact key counts per family, memory, hit rate, latency; --by: where the memory goes. */
export function register(program: Command): void {
  program
    .command('cache-info')
    .description('Redis availability, server, exact key counts per family, memory, evictions, hit rate, latency')
    .addOption(new Option('--format <format>', 'the same as -o (kept for scripts): table, json, prometheus, ...').choices(['table', 'wide', 'plain', 'json', 'yaml', 'prometheus']))
    .addOption(new Option('--by <what>', 'exact per-family or per-tenant keys, memory (MEMORY USAGE), TTL spread, keys without TTL, orphans').choices(['tenant', 'family']))
    .option('--tenant <id>', 'only this tenant\'s keys (implies --by tenant; give it once)', (v: string, prev?: string) => {
      if (prev !== undefined) throw new InvalidArgumentError('given more than once: cache-info shows one tenant (or --by tenant for all)');
      return idArg()(v);
    })
    .addOption(new Option('--top <n>', 'tenants shown (and labelled in Prometheus) with --by tenant (default 10)').argParser(intArg('--top')))
    .action(
      action<[], { by?: 'tenant' | 'family'; tenant?: string; top?: number }>(async (ctx, opts) => {
        // Given where it changes nothing, it was ignored without a word.
        // With --tenant (one tenant, --by tenant implied) it changes nothing either.
        if (opts.top !== undefined && (opts.by !== 'tenant' || opts.tenant)) throw new UsageError('--top applies to --by tenant without --tenant');
        if (opts.by || opts.tenant) {
          const { profileCache, profileToPrometheus, profileUpMetric } = await import('../../services/cache-profile.js');
          const profile = async () => {
            const p = await profileCache(
              { cache: ctx.cache, keys: ctx.keys, source: ctx.source, registry: () => ctx.registry() },
              { by: opts.by ?? 'tenant', tenant: opts.tenant, top: opts.top ?? 10, signal: ctx.signal },
            );
            // On stderr in every format (a textfile collector's too).
            warnMovingSlots(ctx.out, p.moving_slots, 'profiling');
            return p;
          };
          if (ctx.out.format === 'prometheus') {
            // For a textfile collector, Redis down is an answer (tenantctl_cache_profile_up 0, exit 0), never an
            // empty file. Only series of its own: the collector refuses one that plain cache-info's file has too.
            let p;
            try {
              p = await profile();
            } catch (err) {
              if (!(err instanceof BackendUnavailableError) || err.backend !== 'redis') throw err;
              // As plain cache-info: no Redis configured is said by the gauge alone; one that fails is a warning.
              const down = { backend: 'none', available: false, ttl_seconds: ctx.config.ttl } as const;
              if (err.reason !== 'not-configured') ctx.out.warn(`warning: ${asClause(describeError(err))}${backendHint('redis', err.reason)}; reporting Redis as unavailable`);
              return { data: down, render: (out) => out.stdout.write(profileUpMetric(false)) };
            }
            return { data: p, render: (out) => out.stdout.write(profileToPrometheus(p) + profileUpMetric(true)) };
          }
          const p = await profile();
          // A tenant with no key at all: said (a typo looks the same as a tenant whose cache is cold).
          if (p.tenant && p.total.keys === 0) ctx.out.warn(`warning: tenant ${p.tenant} has no keys in the cache${(await ctx.tenants.unknown([p.tenant])).length ? ', and is in neither the registry nor YAML (a typo?)' : ''}`);
          return { data: p, render: (out) => renderProfile(out, p) };
        }
        const { collectCacheInfo, toPrometheus } = await import('../../services/cache-info.js');
        const info = await collectCacheInfo(ctx.cache, ctx.admin, ctx.config.ttl, ctx.signal);
        // Redis down is an answer here (available: false; Prometheus tenantctl_redis_up 0): one warning, exit 0.
        if (!info.available && info.error) ctx.out.warn(`warning: ${asClause(info.error)}${backendHint('redis', info.error_reason)}; reporting Redis as unavailable`);
        if (info.info_refused) ctx.out.warn(`warning: ${asClause(info.info_refused)}; memory, hits and the server's version are not reported, the key counts are`);
        if (info.counts_refused) ctx.out.warn(`warning: ${asClause(info.counts_refused)}; the key counts are not reported (this Redis user may not SCAN, or the server renamed it), the rest is`);
        warnMovingSlots(ctx.out, info.moving_slots, 'counting');
        if (ctx.out.format === 'prometheus') return { data: info, render: (out) => out.stdout.write(toPrometheus(info)) };
        return { data: info, render: (out) => render(out, info) };
      }),
    );
}
