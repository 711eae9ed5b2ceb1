import type { Command } from 'commander';
import { action, idArg } from '../action.js';
import { subscriptionChangeResult } from './subscription-result.js';

/** `reactivate <business>`: status back to active, an expired demo expiry cleared. */
export function register(program: Command): void {
  program
    .command('reactivate')
    .description('set a business\'s status back to active (an expired demo expiry is cleared), then invalidate its cached permissions')
    .argument('<business>', 'business id', idArg('business'))
    .action(
      action<[string], object>(async (ctx, business) => {
        ctx.audit.begin('reactivate', { business });
        return subscriptionChangeResult(await ctx.subscriptions.reactivate(business));
      }),
    );
}
