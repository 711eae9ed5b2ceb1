import { UsageError } from '../errors.js';

/**
 * How stdout shows data (see Output):
 * - `table`: boxed tables for people (the default on a terminal);
 * - `wide`: the same with every column and field;
 * - `plain`: tab-separated rows with a header line, no box drawing (the default
 *   when stdout is not a terminal, as `kubectl get` and `gh` do);
 * - `json` / `yaml`: one document for scripts (`--json` is `-o json`);
 * - `prometheus`: the text exposition format (cache-info only).
 * Kept apart from Output so the program's definition loads no renderer.
 */
export const OUTPUT_FORMATS = ['table', 'wide', 'plain', 'json', 'yaml', 'prometheus'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/**
 * The one format asked for by `--json`, `-o / --output` and cache-info's `--format` (the same setting, kept
 * for scripts), or undefined; two that disagree (`--json -o yaml`) are a usage error: one was silently dropped.
 */
export function requestedFormat(opts: { json?: boolean; output?: string; format?: string }): OutputFormat | undefined {
  const asked = [...new Set([opts.json ? 'json' : undefined, opts.output, opts.format].filter((f): f is string => !!f))];
  if (asked.length > 1) throw new UsageError(`output formats disagree (${asked.join(', ')}): give one of --json, -o / --output${opts.format ? ', --format' : ''}`);
  return asked[0] as OutputFormat | undefined;
}
