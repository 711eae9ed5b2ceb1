import { Option, type Command } from 'commander';
import { DeniedError, InterruptedError, PartialFailureError, type TenantctlError } from '../../errors.js';
import { clip } from '../../redact.js';
import { CacheVerifier, DEFAULT_VERIFY_BATCH, type FieldDiff, type VerifyEntry, type VerifyReport, type VerifySummary } from '../../services/verify.js';
import { action, idsArg, intArg } from '../action.js';
import type { Output } from '../output.js';

const shown = (v: unknown) => (v === undefined ? '(absent)' : JSON.stringify(v));
const fieldText = (f: FieldDiff) => `${f.field}: ${shown(f.cached)} -> ${shown(f.current)}`;

/** The fields with their values when that fits (always with -o wide), else their names only. */
function detail(e: VerifyEntry, wide: boolean): string {
  if (!e.fields?.length) return e.reason ?? '';
  const full = e.fields.map(fieldText).join('; ');
  if (wide || full.length <= 100) return full;
  return clip(`differs in ${e.fields.map((f) => f.field).join(', ')} (values: -o wide or --json)`, 160);
}

/** Only the entries that are not ok, then one summary line. */
function render(out: Output, r: VerifyReport, fix: boolean) {
  // Piped, the header line even with nothing to list (README: rows under a header line; it wrote nothing).
  if (r.entries.length || out.rows) {
    out.table(
      ['key', 'status', 'detail', ...(fix ? ['fixed'] : [])],
      r.entries.map((e) => [e.key, e.status, detail(e, out.wide), ...(fix ? [e.fixed ? 'deleted' : '-'] : [])]),
    );
  }
  out.summary(summaryLine(r, fix));
}

function summaryLine(r: VerifyReport, fix: boolean): string {
  const s = r.summary;
  const parts = [`${s.ok} ok`, `${s.stale} stale`, `${s.orphan} orphan`, ...(s.error ? [`${s.error} undecided`] : [])];
  const extra = [...(s.not_cached ? [`${s.not_cached} not cached`] : []), ...(fix ? [`${s.fixed} deleted`] : [])];
  return `verified ${s.checked} cached entr${s.checked === 1 ? 'y' : 'ies'}: ${parts.join(', ')}${extra.length ? `; ${extra.join(', ')}` : ''} (${(s.ms / 1000).toFixed(1)} s)`;
}

/** Exit 4 when some entry could not be decided, else 1 when any is stale or orphaned. */
function failureOf(r: VerifyReport, fix: boolean): TenantctlError | undefined {
  const s = r.summary;
  if (s.error) return new PartialFailureError(`${s.error} cached entr${s.error === 1 ? 'y' : 'ies'} could not be verified (see the report)`);
  if (!s.stale && !s.orphan) return undefined;
  // Only the kinds found ("1 stale and 0 orphan cache entry found" read as a slip).
  const kinds = [s.stale && `${s.stale} stale`, s.orphan && `${s.orphan} orphan`].filter(Boolean).join(' and ');
  // Judged against YAML alone, --fix refuses (exit 2): the advice is the registry (a probe: it said "--fix deletes them").
  const next = s.yaml_only ? '; judged against the YAML files alone: --fix needs the registry (--registry or DATABASE_URL)' : '; --fix deletes them';
  return new DeniedError(`${kinds} cache entr${s.stale + s.orphan === 1 ? 'y' : 'ies'} found${fix ? ` (${s.fixed} deleted)` : next}`);
}

/** `verify [tenant...]`: are the cached tenant_config: / permissions: entries what the registry and YAML give now? */
export function register(program: Command): void {
  program
    .command('verify')
    .description('compare cached tenant_config: and permissions: entries with the registry and YAML now: ok / stale / orphan; exit 1 when any is stale or orphaned')
    .argument('[tenant...]', 'only these tenants (default: every cached entry, found by one sweep)', idsArg())
    .option('--fix', 'delete the stale and orphan entries (only those; recorded in the audit log)')
    .addOption(new Option('--batch-size <n>', `keys per MGET and ids per registry read (default ${DEFAULT_VERIFY_BATCH})`).argParser(intArg('--batch-size')).hideHelp())
    .action(
      action<[string[] | undefined], { fix?: boolean; batchSize?: number }>(async (ctx, tenants, opts) => {
        const fix = !!opts.fix;
        if (fix) ctx.audit.begin('verify --fix', { tenants: tenants?.length ? tenants : 'all', families: ['tenant_config', 'permissions'] });
        const verifier = new CacheVerifier({
          cache: ctx.cache, keys: ctx.keys, registry: () => ctx.registry(), source: ctx.source, env: ctx.env, warn: (m) => ctx.out.warn(m),
          advice: { tenantsDir: '--tenants-dir', fix: '--fix' },
        });
        const counts = (r: VerifyReport) => ({ checked: r.summary.checked, stale: r.summary.stale, orphan: r.summary.orphan, deleted: r.summary.fixed });
        // What --fix has confirmed so far, for the audit line of a run ended at once by a second signal (it had no
        // counts; then none of the entries checked): one object, kept current.
        const sofar = { checked: 0, stale: 0, orphan: 0, deleted: 0 };
        const onCounted = (s: Readonly<VerifySummary>) => {
          sofar.checked = s.checked;
          sofar.stale = s.stale;
          sofar.orphan = s.orphan;
          sofar.deleted = s.fixed;
          ctx.audit.progress(sofar);
        };
        let report: VerifyReport;
        try {
          report = await verifier.verify({ tenants: tenants?.length ? tenants : undefined, fix, batchSize: opts.batchSize, signal: ctx.signal, ...(fix && { onCounted }) });
        } catch (err) {
          // Stopped by a signal, or a backend lost after --fix deleted entries (exit 4): the report so far.
          if (!(err instanceof InterruptedError || err instanceof PartialFailureError) || !err.partial) throw err;
          const partial = err.partial as VerifyReport;
          return { data: partial, render: (out: Output) => render(out, partial, fix), failure: err, counts: counts(partial) };
        }
        // A named tenant nobody knows (a typo) is said, as invalidate says it: "0 entries checked" alone reads as all clear.
        for (const t of tenants?.length ? await ctx.tenants.unknown(tenants) : []) ctx.out.warn(`warning: tenant ${t} is in neither the registry nor YAML (a typo?)`);
        return { data: report, render: (out) => render(out, report, fix), failure: failureOf(report, fix), counts: counts(report) };
      }),
    );
}
