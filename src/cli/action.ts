import { InvalidArgumentError, type Command } from 'commander';
import { TenantctlError } from '../errors.js';
import { parseId } from '../keys/ids.js';
import { parsePositiveInt } from '../config/config.js';
import { CliContext, type GlobalOptions } from './context.js';
import type { Output } from './output.js';

/** What a command's action returns: data, how to show it as a table, and its exit code. */
export interface CommandResult {
  data: unknown;
  /** The people's view; without it the data is printed as JSON. */
  render?: (out: Output) => void;
  /**
   * A negative or partial outcome (denied, partial failure, failed smoke test):
   * thrown after the data is rendered, so the exit code and the stderr line
   * come from its class, in one place (exit-codes.ts).
   */
  failure?: TenantctlError;
}

/**
 * Turns `run(ctx, ...args, options)` into a commander action: builds the
 * context from the global and command options, renders the result (table or
 * --json), sets the exit code, and always closes the context.
 */
export function action<A extends unknown[], O>(run: (ctx: CliContext, ...argsAndOptions: [...A, O]) => Promise<CommandResult>) {
  return async (...all: unknown[]): Promise<void> => {
    const cmd = all[all.length - 1] as Command;
    const opts = cmd.optsWithGlobals() as GlobalOptions & O;
    const ctx = new CliContext(opts);
    try {
      const result = await run(ctx, ...([...all.slice(0, -2), opts] as [...A, O]));
      if (ctx.out.json || !result.render) ctx.out.data(result.data);
      else result.render(ctx.out);
      if (result.failure) throw result.failure;
    } finally {
      await ctx.close();
    }
  };
}

/** commander argument parser for one id: a bad id is a usage error (exit 2) before anything runs. */
export function idArg(kind = 'tenant') {
  return (value: string): string => {
    try {
      return parseId(value, kind);
    } catch (err) {
      throw new InvalidArgumentError(err instanceof TenantctlError ? err.message : String(err));
    }
  };
}

/** commander parser for variadic ids (called once per value with the list so far). */
export function idsArg(kind = 'tenant') {
  const one = idArg(kind);
  return (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), one(value)];
}

/** commander parser for a positive whole number option. */
export function intArg(name: string) {
  return (value: string): number => {
    try {
      return parsePositiveInt(value, name);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };
}
