import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, runCli, tenantYaml, uniq, workspace, type Workspace } from '../helpers/setup.js';
import { buildProgram } from '../../src/cli/program.js';

const run = promisify(execFile);

/** Whether a shell is installed here (zsh and fish often are not: their syntax checks are skipped then). */
function has(shell: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${shell}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * `completion bash|zsh|fish`, as a shell uses it: the bash script is
 * syntax-checked, then sourced in a real bash whose completion function is
 * called the way bash calls it on TAB (COMP_WORDS / COMP_CWORD set, the
 * answer in COMPREPLY), with `tenantctl` on the PATH for the tenant ids.
 */
describe('completion', () => {
  let ws: Workspace;
  let shimDir: string;
  let bashFile: string;
  let script: string;
  const [a, b, other] = [uniq('acme'), uniq('beta'), uniq('other')];

  beforeAll(async () => {
    ws = workspace({ [a]: tenantYaml(a), [b]: tenantYaml(b) }, { registry: false });
    ws.writeTenant('tiers', 'tiers: {}\n'); // the catalogue, not a tenant
    mkdirSync(path.join(ws.dir, 'elsewhere'));
    writeFileSync(path.join(ws.dir, 'elsewhere', `${other}.yaml`), tenantYaml(other));
    writeFileSync(path.join(ws.dir, 'elsewhere', 'tiers.yaml'), 'features: [has_ai, has_payroll]\ntiers:\n  pilot_core: { features: [has_ai], max_devices: 3 }\n  pilot_pro: { features: [has_ai, has_payroll], max_devices: null }\n');
    shimDir = path.join(ws.dir, 'bin');
    mkdirSync(shimDir);
    writeFileSync(path.join(shimDir, 'tenantctl'), `#!/bin/sh\nexec '${process.execPath}' '${BIN}' "$@"\n`);
    chmodSync(path.join(shimDir, 'tenantctl'), 0o755);
    const r = await runCli(['completion', 'bash'], { cwd: ws.dir });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    script = r.stdout;
    bashFile = path.join(ws.dir, 'tenantctl.bash');
    writeFileSync(bashFile, script);
  });
  afterAll(() => ws.cleanup());

  /**
   * Completes each line (the cursor at its end; a trailing space starts a new
   * word) in one bash process; returns the sorted candidates per line.
   */
  async function complete(lines: string[]): Promise<string[][]> {
    const calls = lines.map((line) => {
      const words = line.split(' ');
      const quoted = words.map((w) => `'${w}'`).join(' ');
      return `COMP_WORDS=(${quoted}); COMP_CWORD=${words.length - 1}; COMP_LINE='${line}'; COMP_POINT=\${#COMP_LINE}; COMPREPLY=()
"$fn" tenantctl "\${COMP_WORDS[COMP_CWORD]}" "\${COMP_WORDS[COMP_CWORD-1]}"
printf '%s ' "\${COMPREPLY[@]}"; echo`;
    });
    const driver = `source '${bashFile}'
fn=$(complete -p tenantctl | sed -E 's/.*-F ([^ ]+).*/\\1/')
${calls.join('\n')}`;
    const { stdout } = await run('bash', ['-c', driver], {
      cwd: ws.dir,
      env: { PATH: `${shimDir}:${process.env.PATH}`, HOME: ws.dir, NO_COLOR: '1' },
    });
    return stdout.split('\n').slice(0, lines.length).map((l) => l.trim().split(/\s+/).filter(Boolean).sort());
  }

  it('the bash script is valid bash and registers a completion function for tenantctl', async () => {
    await run('bash', ['-n', bashFile]);
    const { stdout } = await run('bash', ['-c', `source '${bashFile}' && complete -p tenantctl`]);
    expect(stdout).toMatch(/^complete -F \S+ tenantctl$/m);
  });

  it('completes subcommands, their flags, the global flags and option values', async () => {
    const [inv, noCache, dryRun, globalFlag, globalAfterCommand, output, format, shells, help] = await complete([
      'tenantctl inv',
      'tenantctl get-config --no-',
      'tenantctl invalidate-all --dr',
      'tenantctl --redis-t',
      'tenantctl doctor --tenants-d',
      'tenantctl -o y',
      'tenantctl cache-info --format prom',
      'tenantctl completion ',
      'tenantctl help invalidate',
    ]);
    expect(inv).toEqual(['invalidate', 'invalidate-all']);
    expect(noCache).toEqual(['--no-cache']);
    expect(dryRun).toEqual(['--dry-run']);
    expect(globalFlag).toEqual(['--redis-timeout']);
    expect(globalAfterCommand).toEqual(['--tenants-dir']);
    expect(output).toEqual(['yaml']);
    expect(format).toEqual(['prometheus']);
    expect(shells).toEqual(['bash', 'fish', 'zsh']);
    expect(help).toEqual(['invalidate', 'invalidate-all']);
  });

  it('offers the tenant ids of the tenants directory (YAML only), also of a --tenants-dir on the line', async () => {
    const [getConfig, second, variadic, afterGlobal, elsewhere, prefix] = await complete([
      'tenantctl get-config ',
      `tenantctl get-config ${a} `,
      `tenantctl invalidate ${a} `,
      'tenantctl --ttl 5 get-config ',
      'tenantctl --tenants-dir elsewhere get-config ',
      `tenantctl check-permission ${a.slice(0, 6)}`,
    ]);
    expect(getConfig).toEqual([a, b].sort());
    expect(second).toEqual([]); // get-config takes one tenant
    expect(variadic).toEqual([a, b].sort());
    expect(afterGlobal).toEqual([a, b].sort()); // "5" is --ttl's value, not the subcommand
    expect(elsewhere).toEqual([other]);
    expect(prefix).toEqual([a]);
  });

  it('a --tenants-dir=DIR on the line (bash splits it at "=") is passed on too', async () => {
    // As bash hands it over: COMP_WORDBREAKS holds "=", so `--tenants-dir=elsewhere` is three words.
    const [split, value] = await complete(['tenantctl --tenants-dir = elsewhere get-config ', 'tenantctl get-config --tenants-dir = elsew']);
    expect(split).toEqual([other]);
    expect(value).toEqual(['elsewhere']); // --tenants-dir=<dir> itself completes directories
  });

  it('a --tenants-dir written with ~, quotes or a backslash is read as bash would pass it (it was looked up as typed: nothing offered)', async () => {
    // HOME is the workspace here: ~/elsewhere is its elsewhere/.
    const lines = ['tenantctl --tenants-dir ~/elsewhere get-config ', 'tenantctl --tenants-dir "elsewhere" get-config ', 'tenantctl --tenants-dir els\\ewhere get-config '];
    expect(await complete(lines)).toEqual([[other], [other], [other]]);
    // After "=" bash leaves a ~ as it is, and so the command would look for a directory named ~: nothing (a review).
    expect(await complete(['tenantctl --tenants-dir = ~/elsewhere get-config '])).toEqual([[]]);
    // A quoted ~ is no home directory, and nothing typed is run.
    expect(await complete(['tenantctl --tenants-dir "~/elsewhere" get-config ', 'tenantctl --tenants-dir $(touch${IFS}ran) get-config '])).toEqual([[], []]);
    expect(existsSync(path.join(ws.dir, 'ran'))).toBe(false);
  });

  it('offers features and tiers from the tenants directory\'s tiers.yaml (nothing when it is malformed)', async () => {
    const [feature, tier, overrideFeature, malformed] = await complete([
      `tenantctl --tenants-dir elsewhere check-permission ${other} `,
      `tenantctl --tenants-dir elsewhere set-subscription ${other} --tier pilot_`,
      `tenantctl --tenants-dir elsewhere override ${other} has_p`,
      `tenantctl check-permission ${a} `, // this workspace's tiers.yaml is no catalogue (no features list)
    ]);
    expect(feature).toEqual(['has_ai', 'has_payroll']);
    expect(tier).toEqual(['pilot_core', 'pilot_pro']);
    expect(overrideFeature).toEqual(['has_payroll']);
    expect(malformed).toEqual([]);
    const quiet = await runCli(['__complete', 'features'], { cwd: ws.dir });
    expect({ code: quiet.code, stdout: quiet.stdout, stderr: quiet.stderr }).toEqual({ code: 0, stdout: '', stderr: '' });
  });

  it.skipIf(!has('fish'))('fish completes tenant ids of a --tenants-dir=DIR, and features', async () => {
    const r = await runCli(['completion', 'fish'], { cwd: ws.dir });
    const file = path.join(ws.dir, 'tenantctl.fish');
    writeFileSync(file, r.stdout);
    const env = { PATH: `${shimDir}:${process.env.PATH}`, HOME: ws.dir, XDG_CONFIG_HOME: path.join(ws.dir, '.config'), NO_COLOR: '1' };
    const ask = async (line: string) => {
      const { stdout } = await run('fish', ['--no-config', '-c', `source '${file}'; complete -C '${line}'`], { cwd: ws.dir, env });
      return stdout.split('\n').map((l) => l.split('\t')[0]).filter(Boolean).sort();
    };
    expect(await ask('tenantctl --tenants-dir=elsewhere get-config ')).toEqual([other]);
    expect(await ask('tenantctl --tenants-dir elsewhere get-config ')).toEqual([other]);
    // ~ and quotes read as fish would pass them (HOME is the workspace).
    expect(await ask('tenantctl --tenants-dir ~/elsewhere get-config ')).toEqual([other]);
    expect(await ask('tenantctl --tenants-dir=~/elsewhere get-config ')).toEqual([]);
    // A quoted or escaped ~ is no home directory to fish either (a review: it was made $HOME).
    expect(await ask('tenantctl --tenants-dir "~/elsewhere" get-config ')).toEqual([]);
    expect(await ask('tenantctl --tenants-dir \\~/elsewhere get-config ')).toEqual([]);
    // Given twice: the last one, as the command reads it (the first was taken: a review).
    expect(await ask('tenantctl --tenants-dir "~/nowhere" --tenants-dir ~/elsewhere get-config ')).toEqual([other]);
    expect(await ask('tenantctl --tenants-dir ~/elsewhere --tenants-dir "~/elsewhere" get-config ')).toEqual([]);
    expect(await ask('tenantctl --tenants-dir "elsewhere" get-config ')).toEqual([other]);
    // $HOME as fish expands it: bare, in double quotes, after "=" (README's known-and-left: nothing was offered);
    // escaped, it is no variable to fish either.
    expect(await ask('tenantctl --tenants-dir $HOME/elsewhere get-config ')).toEqual([other]);
    expect(await ask('tenantctl --tenants-dir "$HOME/elsewhere" get-config ')).toEqual([other]);
    expect(await ask('tenantctl --tenants-dir=$HOME/elsewhere get-config ')).toEqual([other]);
    expect(await ask('tenantctl --tenants-dir \\$HOME/elsewhere get-config ')).toEqual([]);
    expect(await ask('tenantctl --tenants-dir $HOME/elsewhere --tenants-dir "~/elsewhere" get-config ')).toEqual([]);
    expect(await ask('tenantctl get-config ')).toEqual([a, b].sort());
    expect(await ask(`tenantctl --tenants-dir elsewhere check-permission ${other} has_`)).toEqual(['has_ai', 'has_payroll']);
  });

  it('every subcommand and every flag of the program is in the script (generated, so it never goes stale)', async () => {
    const program = buildProgram();
    const help = program.createHelp();
    const commands = help.visibleCommands(program);
    expect(commands.map((c) => c.name())).toEqual(expect.arrayContaining(['completion', 'config', 'doctor', 'get-config', 'migrate-yaml']));
    const lines = commands.map((c) => `tenantctl ${c.name()} --`);
    const offered = await complete(lines);
    commands.forEach((cmd, i) => {
      const longs = [...help.visibleOptions(cmd), ...help.visibleOptions(program)].map((o) => o.long).filter(Boolean);
      expect(offered[i], cmd.name()).toEqual(expect.arrayContaining(longs));
    });
    const [all] = await complete(['tenantctl ']);
    expect(all).toEqual(commands.map((c) => c.name()).sort());
  });

  it('the hidden __complete lists tenant ids from YAML alone (never Redis or the registry) and stays out of --help', async () => {
    const hole = net.createServer(() => undefined); // accepts and never answers: any use of it would hang
    await new Promise<void>((r) => hole.listen(0, '127.0.0.1', () => r()));
    const port = (hole.address() as net.AddressInfo).port;
    try {
      const r = await runCli(['__complete', 'tenants'], {
        cwd: ws.dir,
        env: { REDIS_URL: `redis://127.0.0.1:${port}`, REDIS_TIMEOUT_MS: '20000', DATABASE_URL: `postgres://u@127.0.0.1:${port}/db`, REGISTRY_TIMEOUT_MS: '20000' },
      });
      expect(r.code).toBe(0);
      expect(r.stdout.trim().split('\n')).toEqual([a, b].sort());
      expect(r.stderr).toBe('');
      expect(r.ms).toBeLessThan(10_000);
    } finally {
      hole.close();
    }
    const families = await runCli(['__complete', 'families'], { cwd: ws.dir });
    expect(families.stdout.split('\n')).toEqual(expect.arrayContaining(['tenant_config', 'permissions', 'dashboard_kpis']));
    const helpText = await runCli(['--help']);
    expect(helpText.stdout).toMatch(/completion/);
    expect(helpText.stdout).not.toMatch(/__complete/);
  });

  it('the script needs no configuration: a malformed config file or an unusable DATABASE_URL still gives it (a shell start-up file sources it anywhere)', async () => {
    const broken = workspace({}, { registry: false });
    try {
      writeFileSync(path.join(broken.dir, 'tenantctl.config.yaml'), 'ttl: [\n');
      for (const env of [{}, { DATABASE_URL: 'mysql://u:p@h/db' }]) {
        const r = await runCli(['completion', 'bash'], { cwd: broken.dir, env });
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toMatch(/^complete -F \S+ tenantctl$/m);
        expect(r.stderr).toBe('');
      }
    } finally {
      broken.cleanup();
    }
  });

  it('an unknown shell is a usage error', async () => {
    const r = await runCli(['completion', 'tcsh']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bash, zsh, fish/);
  });

  for (const shell of ['zsh', 'fish'] as const) {
    it(`the ${shell} script names every subcommand and calls __complete`, async () => {
      const r = await runCli(['completion', shell], { cwd: ws.dir });
      expect(r.code).toBe(0);
      for (const cmd of buildProgram().createHelp().visibleCommands(buildProgram())) expect(r.stdout).toContain(cmd.name());
      expect(r.stdout).toContain('__complete');
      expect(r.stdout).toMatch(/--tenants-dir/);
    });

    it.skipIf(!has(shell))(`the ${shell} script passes ${shell} -n${has(shell) ? '' : ` (skipped: ${shell} is not installed here)`}`, async () => {
      const r = await runCli(['completion', shell], { cwd: ws.dir });
      const file = path.join(ws.dir, `tenantctl.${shell}`);
      writeFileSync(file, r.stdout);
      await run(shell, ['-n', file]);
    });
  }
});
