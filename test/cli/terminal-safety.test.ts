import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { runCli, workspace, type Workspace } from '../helpers/setup.js';
import { visibleControls } from '../../src/redact.js';

/**
 * Tenant data reaches the operator's terminal: a name holding an OSC sequence (set the window title,
 * write the clipboard) or a carriage return must be shown, never obeyed.
 */
describe('control characters in tenant data', () => {
  let ws: Workspace;
  beforeAll(() => {
    ws = workspace({}, { registry: false });
    ws.writeTenant('weird', 'client:\n  id: weird\n  name: "We \\e[31mRED\\e[0m \\e]0;pwned\\a end\\rX \\e]52;c;Y2xpcA==\\a"\n');
  });
  afterAll(() => ws.cleanup());

  it('list-tenants, piped and as a table: OSC, BEL and CR shown as \\xNN, no raw control character but the views\' own', async () => {
    for (const args of [['list-tenants'], ['list-tenants', '-o', 'table'], ['list-tenants', '-o', 'wide']]) {
      const r = await runCli(args, { cwd: ws.dir });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('\\x1b]0;pwned\\x07 end');
      expect(r.stdout).toContain('\\x1b]52;c;Y2xpcA==\\x07');
      // A carriage return: a space in piped rows (tabs and line breaks are the row format's), \x0d in a table.
      expect(r.stdout).toMatch(args.length === 1 ? / end X / : / end\\x0dX /);
      // No ESC but as the start of a colour (SGR) sequence, no BEL, no CR.
      expect(r.stdout.replace(/\x1b\[[0-9;]*m/g, '')).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
    }
    const json = await runCli(['list-tenants', '--json'], { cwd: ws.dir });
    expect(JSON.parse(json.stdout)[0].name).toBe('We \x1b[31mRED\x1b[0m \x1b]0;pwned\x07 end\rX \x1b]52;c;Y2xpcA==\x07');
  });

  it('visibleControls (property): no C0/C1 control character but tab, line feed and SGR colour survives; printable text is unchanged', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.integer({ min: 0, max: 0xff }).map((c) => String.fromCharCode(c)), maxLength: 40 }), (text) => {
        const shown = visibleControls(text);
        expect(shown.replace(/\x1b\[[0-9;]*m/g, '')).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
        if (!/[\x00-\x08\x0b-\x1f\x7f-\x9f]/.test(text)) expect(shown).toBe(text);
      }),
    );
  });
});

describe('colour', () => {
  it('follows the terminal, NO_COLOR, FORCE_COLOR, and TERM=dumb (no colour)', async () => {
    const { colourLevel } = await import('../../src/cli/output.js');
    const tty = { isTTY: true } as NodeJS.WriteStream;
    const pipe = { isTTY: false } as NodeJS.WriteStream;
    expect(colourLevel(tty, {})).toBe(1);
    expect(colourLevel(tty, { TERM: 'xterm-256color' })).toBe(1);
    expect(colourLevel(tty, { TERM: 'dumb' })).toBe(0);
    expect(colourLevel(pipe, {})).toBe(0);
    expect(colourLevel(tty, { NO_COLOR: '1' })).toBe(0);
    expect(colourLevel(pipe, { FORCE_COLOR: '1' })).toBe(1);
    expect(colourLevel(tty, { FORCE_COLOR: '0' })).toBe(0);
  });
});
