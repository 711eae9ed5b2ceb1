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
