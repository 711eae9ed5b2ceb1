import { Option, type Command } from 'commander';
import { collectCacheInfo, toPrometheus, type CacheInfo } from '../../services/cache-info.js';
import { action } from '../action.js';
import type { Output } from '../output.js';

function render(out: Output, info: CacheInfo) {
  if (!info.available) {
    out.table(['backend', 'available', 'ttl_seconds'], [[info.backend, 'no', info.ttl_seconds]]);
    return;
  }
  out.table(['field', 'value'], [
    ['server', `${info.server!.target} (${info.server!.mode}, Redis ${info.server!.version}, ${info.server!.masters} master${info.server!.masters > 1 ? 's' : ''})`],
    ['latency', `${info.latency_ms} ms`],
    ['memory', `${info.used_memory_mb} MB used / ${info.max_memory_mb ? `${info.max_memory_mb} MB` : 'unlimited'} max, policy ${info.memory!.policy}`],
    ['evicted keys', info.redis_evicted_keys],
    ['hits / misses', `${info.hits} / ${info.misses} (hit rate ${info.hit_rate_percent}%)`],
    ['keys (all / tool\'s)', `${info.total_keys} / ${info.tool_keys}`],
    ['ttl (tenant_config)', `${info.ttl_seconds} s`],
  ]);
  out.table(['family', 'keys'], Object.entries(info.families ?? {}));
}

/** `cache-info`: availability, server, exact key counts per family, memory, hit rate, latency. */
export function register(program: Command): void {
  program
    .command('cache-info')
    .description('Redis availability, server, exact key counts per family, memory, evictions, hit rate, latency')
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json', 'prometheus']).default('table'))
    .action(
      action<[], { format: string }>(async (ctx, opts) => {
        const info = await collectCacheInfo(ctx.cache, ctx.admin, ctx.config.ttl);
        if (opts.format === 'prometheus') return { data: info, render: (out) => out.stdout.write(toPrometheus(info)) };
        if (opts.format === 'json') return { data: info };
        return { data: info, render: (out) => render(out, info) };
      }),
    );
}
