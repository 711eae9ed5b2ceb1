import { UsageError } from '../../errors.js';
import type { Command } from 'commander';
import { action, idArg } from '../action.js';
import { own } from '../styled.js';
import { showControls } from '../../redact.js';
import { yamlDump } from '../document-text.js';

/** `get-config <tenant>`: cache -> registry -> YAML; writes the cache only with --warm. */
export function register(program: Command): void {
  program
    .command('get-config')
    .description('show a tenant\'s configuration (cache -> registry -> YAML) and where it came from')
    .argument('<tenant>', 'tenant id', idArg())
    .option('--no-cache', 'bypass Redis: read the registry / YAML and cache nothing')
    .option('--show-secrets', 'print secret values instead of ****')
    .option('--warm', 'on a cache miss, write tenant_config:<id> exactly as the services would (secrets resolved from this environment; skipped if one does not resolve)')
    .action(
      action<[string], { cache: boolean; showSecrets?: boolean; warm?: boolean }>(async (ctx, tenant, opts) => {
        // --warm writes the cache that --no-cache bypasses: one of them is a slip.
        if (opts.warm && opts.cache === false) throw new UsageError('--warm writes the cache and --no-cache bypasses it: give one');
        if (opts.warm) ctx.audit.begin('get-config --warm', { tenant });
        const result = await ctx.tenants.get(tenant, { noCache: opts.cache === false });
        const config = opts.showSecrets ? result.config : ctx.tenants.masked(result);
        if (result.unsetVariables.length) ctx.out.warn(`warning: unset environment variables: ${result.unsetVariables.join(', ')}`);
        // Asked to warm with no cache at all: said (Redis down has said so already).
        if (opts.warm && !ctx.cache.configured) ctx.out.warn('warning: no Redis configured (REDIS_URL, --redis-url, --redis-cluster or --redis-sentinel): nothing warmed');
        return {
          data: { id: tenant, source: result.source, config },
          render: (out) => {
            // The header is a YAML comment: the whole view stays YAML that loads back to the config.
            out.line(own(out.c.dim(`# tenant ${showControls(tenant)} · source ${result.source}`)));
            // A value holding a control character (or a bidirectional override) is written double-quoted,
            // escaped: the lines are the tool's own.
            out.line(own(yamlDump(config, { lineWidth: 120 }).trimEnd()));
          },
        };
      }),
    );
}
