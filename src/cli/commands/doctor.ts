import type { Command } from 'commander';
import { BackendUnavailableError, DeniedError, type TenantctlError } from '../../errors.js';
import type { CheckStatus, DoctorReport } from '../../services/doctor.js';
import { action } from '../action.js';
import type { Output } from '../output.js';
import { own, type Styled } from '../styled.js';
import { showControls } from '../../redact.js';

/** The table's width, and what its borders and padding take: `│ a │ b │ c │`. */
const TABLE_WIDTH = 80;
const TABLE_FRAME = 10;
/** A detail column narrower than this is not worth it: the table widens instead. */
const MIN_DETAIL_WIDTH = 30;

/** Detail column width: with the check and status columns (their widest cells) the table fits 80 columns. */
function detailWidth(report: DoctorReport): number {
  const check = Math.max('check'.length, ...report.checks.map((c) => `${c.area} ${c.check}`.length));
  const status = Math.max('status'.length, ...report.checks.map((c) => c.status.length));
  return Math.max(MIN_DETAIL_WIDTH, TABLE_WIDTH - TABLE_FRAME - check - status);
}

/**
 * Wraps at spaces so the table fits 80 columns (a plain, tab-separated row
 * joins the lines again). A longer word, a path, is never cut: it stays whole.
 */
function wrap(text: string, width: number): string {
  const lines: string[] = [];
  let line = '';
  for (const w of text.split(' ')) {
    if (line && line.length + 1 + w.length > width) {
      lines.push(line);
      line = w;
    } else line = line ? `${line} ${w}` : w;
  }
  if (line) lines.push(line);
  return lines.join('\n');
}

function statusText(out: Output, status: CheckStatus): Styled {
  if (status === 'pass') return own(out.c.green(status));
  if (status === 'warn') return own(out.c.yellow(status));
  if (status === 'fail') return own(out.c.red(status));
  return own(out.c.dim(status));
}

/**
 * The exit code, through the error class (exit-codes.ts): 3 when a backend
 * could not be reached or failed, else 1 when anything else failed; none
 * (exit 0) when nothing failed, warnings included.
 */
function failureOf(report: DoctorReport): TenantctlError | undefined {
  const failed = report.checks.filter((c) => c.status === 'fail');
  if (!failed.length) return undefined;
  const counts = new Map<string, number>();
  for (const c of failed) counts.set(`${c.area} ${c.check}`, (counts.get(`${c.area} ${c.check}`) ?? 0) + 1);
  const list = [...counts].map(([name, n]) => (n > 1 ? `${name} x${n}` : name)).join(', ');
  const message = `doctor: ${failed.length} check${failed.length > 1 ? 's' : ''} failed (${list})`;
  const down = failed.find((c) => c.unreachable);
  // Its cause carried on: the CLI's hint for it (a Cluster node given as one server: --redis-cluster).
  if (down) return new BackendUnavailableError(down.area === 'redis' ? 'redis' : 'registry', `${message}: ${down.detail}`, { reason: down.reason ?? 'unreachable' });
  return new DeniedError(message);
}

/** `doctor`: checks Redis, the registry and the tenants directory without changing anything; pass / warn / fail per check. */
export function register(program: Command): void {
  program
    .command('doctor')
    .description('check Redis, the registry and the tenant files, changing nothing: pass / warn / fail per check')
    .addHelpText('after', `
Checks: Redis reachable, version, memory and eviction policy, evictions, the tool's key families (and a
Cluster resharding under way while they were counted);
the registry reachable, schema present and current, read and write rights, invalidations still owed;
every tenant file parses and its client.id matches its file name.
Exit: 0 nothing failed (warnings are fine), 3 a backend is unreachable, 1 anything else failed.`)
    .action(
      action<[], object>(async (ctx) => {
        const { runDoctor } = await import('../../services/doctor.js');
        const report = await runDoctor({
          cache: ctx.cache,
          admin: ctx.admin,
          source: ctx.source,
          registrySpec: ctx.config.registry,
          registry: () => ctx.registry(),
        });
        return {
          data: report,
          failure: failureOf(report),
          render: (out) => {
            // A status of 7 letters (unknown) left the detail column 1 too wide (81 columns).
            const width = detailWidth(report);
            out.table(['check', 'status', 'detail'], report.checks.map((c) => [`${c.area} ${c.check}`, statusText(out, c.status), own(wrap(showControls(c.detail), width))]));
          },
        };
      }),
    );
}
