import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { action, idArg } from '../action.js';

/** `check-permission`: not built yet (the permissions issue); says so and exits 2. */
export function register(program: Command): void {
  program
    .command('check-permission')
    .description('check a business feature permission (not built yet)')
    .argument('<business>', 'business id', idArg('business'))
    .argument('<feature>', 'feature name')
    .action(
      action<[string, string], object>(async () => {
        throw new UsageError('check-permission is not built yet (see the permissions issue)');
      }),
    );
}
