import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { action, idArg } from '../action.js';
import { subscriptionChangeResult } from './subscription-result.js';

/** `override <business> <feature> --grant | --deny | --clear`, then invalidates permissions:<business>. */
export function register(program: Command): void {
  program
    .command('override')
    .description('grant or deny one feature to a business whatever its tier says (or --clear the override)')
    .argument('<business>', 'business id', idArg('business'))
    .argument('<feature>', 'a feature of the catalogue, e.g. has_ai')
    .option('--grant', 'grant the feature')
    .option('--deny', 'deny the feature')
    .option('--clear', 'remove the override')
    .action(
      action<[string, string], { grant?: boolean; deny?: boolean; clear?: boolean }>(async (ctx, business, feature, opts) => {
        const chosen = (['grant', 'deny', 'clear'] as const).filter((k) => opts[k]);
        if (chosen.length !== 1) throw new UsageError('give exactly one of --grant, --deny or --clear');
        ctx.audit.begin('override', { business, feature, action: chosen[0] });
        return subscriptionChangeResult(await ctx.subscriptions.override(business, feature, chosen[0]));
      }),
    );
}
