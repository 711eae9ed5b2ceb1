import type { Command } from 'commander';
import { DeniedError } from '../../errors.js';
import { action, idArg } from '../action.js';
import { own, styled } from '../styled.js';

/** `check-permission <business> <feature>`: exit 0 granted, 1 denied. */
export function register(program: Command): void {
  program
    .command('check-permission')
    .description('is a feature granted to a business? exit 0 granted, 1 denied (cache -> registry -> computed)')
    .argument('<business>', 'business id (the tenant id)', idArg('business'))
    .argument('<feature>', 'feature name, e.g. has_payroll')
    .option('--explain', 'say why: tier, status, demo expiry, the override that applied, where the data came from')
    .action(
      action<[string, string], { explain?: boolean }>(async (ctx, business, feature, opts) => {
        const c = opts.explain ? await ctx.permissions.explain(business, feature) : await ctx.permissions.check(business, feature);
        const r = c.record;
        return {
          data: opts.explain ? { ...c } : { business, feature, granted: c.granted, source: c.source },
          failure: c.granted ? undefined : new DeniedError(`${business} ${feature}: denied (${c.reason})`),
          render: (out) => {
            // Above an --explain table, piped, the verdict is its summary (stderr): a pipe reads the header and
            // rows alone (it came before the header); the exit code says it too.
            // Denied, the error line says it with its reason (both were said).
            if (opts.explain && out.rows) {
              if (c.granted) out.summary(`${business} ${feature}: granted`);
            }
            else out.line(styled`${business} ${feature}: ${own(c.granted ? out.c.green('granted') : out.c.red('denied'))}`);
            if (!opts.explain) return;
            out.table(['explain', ''], [
              ['reason', c.reason],
              ['tier', r.tier],
              ['status', r.status],
              ['demo expires', r.demo_expires_at ?? '-'],
              // Not known without the registry: "-" read as "no override" (a review: beside a deny override).
              ['override', c.override ? `${c.override.feature}: ${c.override.value}` : c.unusedOverride ? `${c.unusedOverride.feature}: ${c.unusedOverride.value} (not applied: ${c.unusedOverride.why})` : c.registryUnavailable ? 'unknown (registry not consulted)' : '-'],
              ['feature in catalogue', c.knownFeature === undefined ? 'unknown (registry not consulted)' : c.knownFeature ? 'yes' : 'no'],
              ['device limit', r.device_limit],
              ['source', c.source],
            ]);
            // The details above beside a cached record: said when they are not the registry's answer.
            if (c.registryDiffers) {
              out.warn(`note: the cached record is not what the registry gives now (an invalidation owed, a write under way, or the registry changed by hand): the registry would answer ${c.registryDiffers.granted ? 'granted' : 'denied'}; the services answer from the cache until it is invalidated (\`tenantctl invalidate ${business.startsWith('-') ? '-- ' : ''}${business}\`, or \`tenantctl verify --fix\` for every such entry)`);
            }
            if (c.registryUnavailable) out.warn('note: the registry could not be read: the override and the catalogue are not known, only the cached record');
          },
        };
      }),
    );
}
