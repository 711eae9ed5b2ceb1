import { Argument, type Command } from 'commander';
import { dump } from 'js-yaml';
import { loadTiersFile, tiersFilePath } from '../../permissions/tiers-file.js';
import { action } from '../action.js';
import { requestedFormat } from '../output-formats.js';
import type { CliContext } from '../context.js';
import { COMPLETE_COMMAND, DYNAMIC_SOURCES, completionScript, type DynamicSource } from '../completion-scripts.js';

const SHELLS = ['bash', 'zsh', 'fish'] as const;
type Shell = (typeof SHELLS)[number];

/**
 * `completion bash|zsh|fish`: the completion script, generated from this
 * program (every subcommand, its flags and the global flags), plus the hidden
 * `__complete tenants|families|features|tiers` the scripts call for tenant ids,
 * key family names, features and tiers: read from the tenants directory (its
 * `tiers.yaml`) and the configuration only (no registry, no Redis), so a TAB
 * costs one process start.
 */
export function register(program: Command): void {
  program
    .command('completion')
    .description('print a shell completion script (bash, zsh or fish): subcommands, flags and tenant ids')
    .addArgument(new Argument('<shell>', 'the shell').choices(SHELLS))
    // It reads no configuration: the global Redis and registry options would only mislead here.
    .configureHelp({ showGlobalOptions: false })
    .addHelpText('after', `
Load it:
  bash   source <(tenantctl completion bash)        (or save it in ~/.local/share/bash-completion/completions/tenantctl)
  zsh    source <(tenantctl completion zsh)         (or save it as _tenantctl in a directory of $fpath)
  fish   tenantctl completion fish | source         (or save it in ~/.config/fish/completions/tenantctl.fish)`)
    // No configuration is read (nor needed): `source <(tenantctl completion bash)` in a shell's start-up file
    // works from any directory, a malformed tenantctl.config.yaml or an unusable DATABASE_URL included.
    .action((shell: Shell, _opts: unknown, cmd: Command) => {
      // `program` is complete by now: every register() has run before any action.
      const script = completionScript(shell, program);
      const format = requestedFormat(cmd.optsWithGlobals());
      if (format === 'json') process.stdout.write(`${JSON.stringify({ shell, script }, null, 2)}\n`);
      else if (format === 'yaml') process.stdout.write(dump({ shell, script }, { lineWidth: -1 }));
      else process.stdout.write(`${script.trimEnd()}\n`);
    });

  program
    .command(COMPLETE_COMMAND, { hidden: true })
    .description('print completion values, one per line (used by the completion scripts)')
    .addArgument(new Argument('<what>').choices(DYNAMIC_SOURCES))
    .action(
      action<[DynamicSource], object>(async (ctx, what) => {
        const values = completionValues(ctx, what);
        return { data: values, render: (out) => out.lines(values) };
      }),
    );
}

/** The values of one dynamic source; nothing (never an error on a TAB) when `tiers.yaml` is absent or malformed. */
function completionValues(ctx: CliContext, what: DynamicSource): string[] {
  if (what === 'tenants') return ctx.source.listIds();
  if (what === 'families') return ctx.keys.families.map((f) => f.name);
  const file = tiersFilePath(ctx.source.dir);
  if (!file) return [];
  try {
    const catalogue = loadTiersFile(file);
    return what === 'features' ? [...catalogue.features] : Object.keys(catalogue.tiers);
  } catch {
    return [];
  }
}
