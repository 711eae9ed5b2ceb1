import { Tenantctl } from '../tenantctl.js';
import type { ConfigFlags } from '../config/config.js';
import { Output } from './output.js';

export interface GlobalOptions extends ConfigFlags {
  json?: boolean;
}

/**
 * Everything a command needs, built once before its action runs: the
 * library's composition root plus where output goes. `close()` runs in
 * `finally`, whatever happened.
 */
export class CliContext extends Tenantctl {
  readonly out: Output;

  constructor(opts: GlobalOptions, env: NodeJS.ProcessEnv = process.env) {
    const out = new Output(!!opts.json, process.stdout, process.stderr, env);
    const { json: _json, ...flags } = opts;
    super({ flags, env, warn: (m) => out.warn(m) });
    this.out = out;
  }
}
