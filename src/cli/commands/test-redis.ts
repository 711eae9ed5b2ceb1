import type { Command } from 'commander';
import { BackendUnavailableError, describeError } from '../../errors.js';
import { action } from '../action.js';
import { own } from '../styled.js';
import type { TestRedisStep } from '../../services/cache-admin.js';

function failedStep(steps: TestRedisStep[]) {
  const s = steps.find((x) => !x.ok);
  // The step's cause carried on (a replica's READONLY at SET: the hint to give its master).
  return new BackendUnavailableError('redis', `Redis test failed at ${s?.step ?? '?'}${s?.detail ? `: ${s.detail}` : ''}`, { reason: s?.reason });
}

/** `test-redis`: PING, SET with TTL, GET, DEL on a unique key, each timed; exit 3 when anything fails. */
export function register(program: Command): void {
  program
    .command('test-redis')
    .description('smoke-test Redis for CI: PING, SET with TTL, GET, DEL on a unique key, with latencies')
    .action(
      action<[], object>(async (ctx) => {
        let r;
        try {
          r = await ctx.admin.testRedis();
        } catch (err) {
          // Not even connected: a script asking for -o json still gets its document (ok false, and why).
          if (!(err instanceof BackendUnavailableError) || err.backend !== 'redis') throw err;
          return { data: { ok: false, server: ctx.cache.target ?? null, error: describeError(err), steps: [] }, render: () => undefined, failure: err };
        }
        return {
          data: r,
          failure: r.ok ? undefined : failedStep(r.steps),
          render: (out) => {
            out.summary(`${r.server}  ${r.mode}  Redis ${r.version}`);
            out.table(['step', 'result', 'ms', 'detail'], r.steps.map((s) => [s.step, own(s.ok ? out.c.green('ok') : out.c.red('FAILED')), s.ms, s.detail]));
          },
        };
      }),
    );
}
