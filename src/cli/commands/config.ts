import type { Command } from 'commander';
import type { ResolvedSetting } from '../../config/config.js';
import { action } from '../action.js';

/** What `tenantctl config` reports: the project it found and every setting with its source. */
export interface ConfigReport {
  project: {
    /** The project directory, or the working directory when none was found. */
    dir: string;
    /** Whether a `tenantctl.config.*` or `.tenantctl/` was found from the working directory up. */
    found: boolean;
    config_file: string | null;
  };
  settings: Array<{
    setting: string;
    /** Credentials masked; null when unset. */
    value: string | null;
    source: ResolvedSetting['source'];
    /** The flag, variable or file that set it; null for a default. */
    origin: string | null;
    /** Set but not used: the setting that outranks it (a Cluster in the environment under --redis-url); null when used. */
    overridden_by: string | null;
    /** Used in part (a Redis URL lending a Cluster or Sentinels its credentials): how; null otherwise. */
    partly_used: string | null;
  }>;
}

/** Long lists (resources, families) are cut in the terminal's table; plain (piped), wide, JSON and YAML have every value whole. */
const MAX_VALUE_CHARS = 60;
const cut = (v: string) => (v.length > MAX_VALUE_CHARS ? `${v.slice(0, MAX_VALUE_CHARS - 1)}…` : v);

function sourceText(s: ConfigReport['settings'][number]): string {
  if (s.overridden_by) return `${sourceOf(s)}, not used: ${s.overridden_by} wins`;
  if (s.partly_used) return `${sourceOf(s)}, ${s.partly_used}`;
  return sourceOf(s);
}

function sourceOf(s: ConfigReport['settings'][number]): string {
  // A setting that follows another (permissions_ttl the ttl) says so, whatever set that one: "file" alone
  // named a file that has no such key (a probe).
  const follows = /^(\w+) \((.*)\)$/.exec(s.origin ?? '');
  if (follows && s.source !== 'default') return `as ${follows[1]}: ${sourceOf({ ...s, origin: follows[2] })}`;
  if (s.source === 'flag') return `flag ${s.origin}`;
  // The file's path is on the "(config file)" row.
  if (s.source === 'file') return 'file';
  if (s.source === 'env') return s.origin ?? 'env';
  return 'default';
}

/** `config`: every setting with its resolved value (credentials masked) and where it came from. */
export function register(program: Command): void {
  program
    .command('config')
    .description('show every setting with its resolved value (credentials masked) and its source: flag, env, config file or default')
    .action(
      action<[], object>(async (ctx) => {
        const { project, settings } = ctx.config;
        const report: ConfigReport = {
          project: { dir: project.dir, found: project.found, config_file: project.configFile ?? null },
          settings: settings.map((s) => ({ setting: s.key, value: s.value ?? null, source: s.source, origin: s.origin ?? null, overridden_by: s.overriddenBy ?? null, partly_used: s.partlyUsed ?? null })),
        };
        return {
          data: report,
          // One table (the project first), so plain output stays one row per line for grep and cut.
          render: (out) => {
            const { dir, found, config_file: file } = report.project;
            out.table(['setting', 'value', 'source'], [
              ['(project)', dir, found ? 'found' : 'not found'],
              ['(config file)', file ?? '', file ? 'found' : 'none'],
              ...report.settings.map((s) => [s.setting, s.value === null ? '' : out.format === 'table' ? cut(s.value) : s.value, sourceText(s)]),
            ]);
          },
        };
      }),
    );
}
