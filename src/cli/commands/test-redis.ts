import type { Command } from 'commander';
import { action } from '../action.js';
import { EXIT } from '../exit-codes.js';

/** `test-redis`: PING, SET with TTL, GET, DEL on a unique key, each timed; exit 3 when anything fails. */
export function register(program: Command): void {
  program
    .command('test-redis')
    .description('smoke-test Redis for CI: PING, SET with TTL, GET, DEL on a unique key, with latencies')
    .action(
      action<[], object>(async (ctx) => {
        const r = await ctx.admin.testRedis();
        return {
          data: r,
          exitCode: r.ok ? 0 : EXIT.BACKEND,
          summary: r.ok ? undefined : `Redis test failed at ${r.steps.find((s) => !s.ok)?.step ?? '?'}`,
          render: (out) => {
            out.line(`${r.server}  ${r.mode}  Redis ${r.version}`);
            out.table(['step', 'result', 'ms', 'detail'], r.steps.map((s) => [s.step, s.ok ? out.c.green('ok') : out.c.red('FAILED'), s.ms, s.detail]));
          },
        };
      }),
    );
}
