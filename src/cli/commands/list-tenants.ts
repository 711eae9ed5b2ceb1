import type { Command } from 'commander';
import { action } from '../action.js';

/** `list-tenants`: active registry tenants together with the YAML ones. */
export function register(program: Command): void {
  program
    .command('list-tenants')
    .description('list tenants: active registry rows together with YAML files')
    .action(
      action<[], object>(async (ctx) => {
        const tenants = await ctx.tenants.list();
        // Nothing, and nothing here to look in: the wrong directory, not an empty project (as get-config says it).
        if (tenants.length === 0 && !ctx.source.checkDir()) {
          ctx.out.warn(`warning: no tenants listed: there is no tenants directory at ${ctx.source.dir}: run from the project, or give --tenants-dir`);
        }
        return {
          // The same field names as the table's columns (snake_case, as the services' records).
          data: tenants.map((t) => ({ id: t.id, name: t.name, source: t.source, status: t.status, yaml_only: t.yamlOnly })),
          render: (out) => {
            out.table(['id', 'name', 'source', 'status', 'yaml_only'], tenants.map((t) => [t.id, t.name, t.source, t.status ?? '-', t.yamlOnly ? 'yes' : '']));
          },
        };
      }),
    );
}
