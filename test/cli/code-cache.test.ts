import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { runCli } from '../helpers/setup.js';
import { buildProgram } from '../../src/cli/program.js';
import { COMMAND_NAMES } from '../../src/cli/command-names.js';
import { SWEEPING_COMMANDS } from '../../src/cli/v8-flags.js';

/**
 * The launcher compiles the CLI bundle with V8's code cache kept in the user's
 * cache directory (src/cli/load-bundle.ts): written by the first run, used by
 * the next, and a cache that does not fit (corrupt, another Node) is rejected
 * by V8 and replaced, never an error.
 */
describe('the code cache of the CLI bundle', () => {
  const cacheHome = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-code-cache-'));
  afterAll(() => rmSync(cacheHome, { recursive: true, force: true }));
  const dir = path.join(cacheHome, 'tenantctl');
  const run = (args: string[]) => runCli([...args, '--debug'], { env: { XDG_CACHE_HOME: cacheHome } });
  const state = (stderr: string) => /^debug: code cache (\w+) \((.+)\)$/m.exec(stderr)?.slice(1, 3) ?? [];
  const files = () => readdirSync(dir).filter((f) => f.endsWith('.bin')).sort();

  it('is written by the first run, used by the next; one that does not fit is rejected, replaced, and the command works', async () => {
    const first = await run(['completion', 'bash']);
    expect(first.code).toBe(0);
    const [s1, file] = state(first.stderr);
    expect(s1).toBe('missing');
    expect(files()).toEqual([path.basename(file)]);
    expect(statSync(file).mode & 0o777).toBe(0o600);

    const second = await run(['completion', 'bash']);
    expect([second.code, state(second.stderr)[0], second.stdout]).toEqual([0, 'used', first.stdout]);

    writeFileSync(file, 'not a code cache');
    const third = await run(['completion', 'bash']);
    expect([third.code, state(third.stderr)[0], third.stdout]).toEqual([0, 'rejected', first.stdout]);
    expect(readFileSync(file).length).toBeGreaterThan(1000);
    expect(state((await run(['completion', 'bash'])).stderr)[0]).toBe('used');

    // A run without a command word keeps a cache of its own.
    const help = await run(['--help']);
    expect([help.code, state(help.stderr)[0]]).toEqual([0, 'missing']);
    expect(files()).toHaveLength(2);

    // So does every command: a cache written by another one holds little of its code.
    const config = await run(['config', '--json']);
    expect([config.code, state(config.stderr)[0]]).toEqual([0, 'missing']);
    expect(state((await run(['--json', 'config'])).stderr)).toEqual(['used', state(config.stderr)[1]]);
    expect(files()).toHaveLength(3);
  });

  it('is named by the bundle\'s content hash, and only this user\'s own file is used (not another user\'s, not one others may write)', async () => {
    const first = await run(['completion', 'zsh']);
    const [, file] = state(first.stderr);
    // code-<kind>-<V8 tag>-<content hash>.bin: a same-size bundle with the same mtime is another file.
    expect(path.basename(file)).toMatch(/^code-command-completion-\d+-[0-9a-f]{16}-[0-9a-f]{8}\.bin$/);
    expect(state((await run(['completion', 'zsh'])).stderr)[0]).toBe('used');
    if (process.getuid?.() !== 0) return; // chown needs root
    const { chmodSync, chownSync } = await import('node:fs');
    chownSync(file, 4242, 4242);
    expect(state((await run(['completion', 'zsh'])).stderr)[0]).toBe('missing');
    chownSync(file, 0, 0);
    chmodSync(file, 0o622);
    expect(state((await run(['completion', 'zsh'])).stderr)[0]).toBe('missing');
    // Rewritten as the user's own, it is used again.
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(state((await run(['completion', 'zsh'])).stderr)[0]).toBe('used');
  });

  it('the launcher knows every command by name (it picks the cache before commander is loaded)', () => {
    const names = buildProgram().commands.map((c) => c.name());
    expect([...COMMAND_NAMES].filter((n) => n !== 'help').sort()).toEqual([...names].sort());
    // The sweeping commands' flag comes from one list (launcher and action()): each must be a command.
    expect([...SWEEPING_COMMANDS].filter((n) => !names.includes(n))).toEqual([]);
  });

  it('where only sweeping commands run (their own V8 flag), they keep a cache too, and their output does not change', async () => {
    // A cache directory of its own: no other command's cache to borrow.
    const home = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-code-cache-sweep-'));
    onTestFinished(() => rmSync(home, { recursive: true, force: true }));
    // cache-info without Redis: it still runs the whole command (the sweep's flag is set, the report says no Redis).
    const env = { XDG_CACHE_HOME: home, REDIS_URL: '' };
    const first = await runCli(['cache-info', '--json', '--debug'], { env });
    const [s1, file] = state(first.stderr);
    expect([first.code, s1]).toEqual([0, 'missing']);
    const second = await runCli(['cache-info', '--json', '--debug'], { env });
    expect([second.code, state(second.stderr)]).toEqual([0, ['used', file]]);
    expect(second.stdout).toBe(first.stdout);
  });
});
