import type { Command } from 'commander';
import { action } from '../action.js';

/** `schema`: print schema.sql (apply it in the Supabase SQL editor; embedded and PostgreSQL registries get it from writers). */
export function register(program: Command): void {
  program
    .command('schema')
    .description('print the registry schema (SQL) to apply to a Supabase project')
    .action(
      action<[], object>(async () => {
        const { schemaSql, SCHEMA_VERSION } = await import('../../registry/sql-store.js');
        const sql = schemaSql();
        return { data: { version: SCHEMA_VERSION, sql }, render: (out) => out.stdout.write(sql) };
      }),
    );
}
