import type { Command } from 'commander';
import { schemaSql } from '../../registry/sql-store.js';

/** `schema`: print schema.sql (apply it in the Supabase SQL editor; embedded and Postgres apply it themselves). */
export function register(program: Command): void {
  program
    .command('schema')
    .description('print the registry schema (SQL) to apply to a Supabase project')
    .action((_opts: object, cmd: Command) => {
      const sql = schemaSql();
      if (cmd.optsWithGlobals().json) process.stdout.write(`${JSON.stringify({ sql }, null, 2)}\n`);
      else process.stdout.write(sql);
    });
}
