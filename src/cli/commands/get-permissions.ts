import type { Command } from 'commander';
import { NotFoundError } from '../../errors.js';
import { action, idArg } from '../action.js';

/** `get-permissions <business>`: the whole cached / computed permission record. */
export function register(program: Command): void {
  program
    .command('get-permissions')
    .description('show a business\'s whole permission record (the one cached at permissions:<business>)')
    .argument('<business>', 'business id', idArg('business'))
    .action(
      action<[string], object>(async (ctx, business) => {
        const p = await ctx.permissions.get(business);
        // No subscription (an unknown business): the record is shown, and the answer is a negative one (exit 1),
        // as check-permission's.
        const none = p.record.tier === 'none' && p.record.status === 'inactive';
        return {
          failure: none ? new NotFoundError(`business ${business} has no subscription`) : undefined,
          data: { business, source: p.source, ...p.record },
          render: (out) => {
            out.table(['field', 'value'], [
              ['business', business],
              ['granted_features', p.record.granted_features.join(', ') || '-'],
              ['tier', p.record.tier],
              ['status', p.record.status],
              ['demo_expires_at', p.record.demo_expires_at ?? '-'],
              ['device_limit', p.record.device_limit],
              ['source', p.source],
            ]);
          },
        };
      }),
    );
}
