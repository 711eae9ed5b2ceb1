import { Option, type Command } from 'commander';
import { UsageError } from '../../errors.js';
import { STATUSES } from '../../permissions/model.js';
import { action, idArg } from '../action.js';
import { subscriptionChangeResult } from './subscription-result.js';

/**
 * "none" clears a value. commander turns a parser's `null` into "" (it reads
 * null as "no value given"), so the parser keeps a marker and the action maps it.
 */
const NONE = 'none' as const;
const noneOr = <T>(parse: (v: string) => T) => (v: string): T | typeof NONE => (v === NONE ? NONE : parse(v));
const cleared = <T>(v: T | typeof NONE | undefined): T | null | undefined => (v === NONE ? null : v);

/** `set-subscription <business>`: tier, status, demo expiry, device limit; then invalidates permissions:<business>. */
export function register(program: Command): void {
  program
    .command('set-subscription')
    .description('create or change a business\'s subscription, then invalidate its cached permissions only')
    .argument('<business>', 'business id', idArg('business'))
    .option('--tier <tier>', 'a tier of the catalogue (required to create)')
    .addOption(new Option('--status <status>', 'subscription status').choices([...STATUSES]))
    .option('--demo-expires <iso>', 'demo expiry, ISO 8601 (e.g. 2030-01-31T00:00:00Z), or "none"', noneOr(String))
    .option('--device-limit <n>', 'max_devices override (whole number), or "none" to use the tier\'s', noneOr((v) => (/^\d+$/.test(v) ? Number(v) : NaN)))
    .action(
      action<[string], { tier?: string; status?: string; demoExpires?: string; deviceLimit?: number | typeof NONE }>(async (ctx, business, opts) => {
        // Nothing asked: a usage error, not a write (and an invalidation) of the subscription as it is.
        if ([opts.tier, opts.status, opts.demoExpires, opts.deviceLimit].every((v) => v === undefined)) {
          throw new UsageError('nothing to change: give --tier, --status, --demo-expires or --device-limit');
        }
        ctx.audit.begin('set-subscription', { business, tier: opts.tier, status: opts.status, demoExpires: opts.demoExpires, deviceLimit: opts.deviceLimit });
        return subscriptionChangeResult(
          await ctx.subscriptions.setSubscription(business, { tier: opts.tier, status: opts.status, demoExpires: cleared(opts.demoExpires), deviceLimit: cleared(opts.deviceLimit) }),
        );
      }),
    );
}
