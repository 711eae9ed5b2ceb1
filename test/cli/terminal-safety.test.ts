import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { expectOneLineError, runCli, runCliOnTerminal, workspace, type CliRun, type Workspace } from '../helpers/setup.js';
import { visibleControls } from '../../src/redact.js';
import { commanderErrorText } from '../../src/cli/program.js';

/** The colour (SGR) sequences the tool itself writes: bold table heads, yellow warnings, green / red words, dim. */
const TOOLS_OWN_SGR = /\x1b\[(?:1|22|2|31|32|33|39)m/g;

/** The text with the tool's own colour sequences taken out: what is left holds no control character but tab and line feed. */
const withoutOwnColour = (text: string) => text.replace(TOOLS_OWN_SGR, '');

/** The data's own sequences (hidden text, red, reset) that must never be written raw. */
const DATA_SGR = ['\x1b[8m', '\x1b[0m', '\x1b[31mRED'];

/**
 * Tenant data reaches the operator's terminal: a name holding an OSC sequence (set the window title,
 * write the clipboard), an SGR one (hidden text, a colour) or a carriage return / line feed must be
 * shown, never obeyed, and never split a row.
 */
describe('control characters in tenant data', () => {
  let ws: Workspace;
  /** client.name of tenant `hidden`: hidden text, a colour, a CR LF and a tab. */
  const HIDDEN = 'A\x1b[8mHIDDEN\x1b[0mB \x1b[31mRED\r\nnext\tcol';
  const HIDDEN_SHOWN = 'A\\x1b[8mHIDDEN\\x1b[0mB \\x1b[31mRED\\x0d\\x0anext\\x09col';
  beforeAll(() => {
    ws = workspace({}, { registry: false });
    ws.writeTenant('weird', 'client:\n  id: weird\n  name: "We \\e[31mRED\\e[0m \\e]0;pwned\\a end\\rX \\e]52;c;Y2xpcA==\\a"\n');
    ws.writeTenant('hidden', 'client:\n  id: hidden\n  name: "A\\e[8mHIDDEN\\e[0mB \\e[31mRED\\r\\nnext\\tcol"\n');
  });
  afterAll(() => ws.cleanup());

  it('list-tenants, piped and as a table: OSC, SGR, BEL, CR, LF and tab shown as \\xNN, no raw control character but the views\' own', async () => {
    for (const args of [['list-tenants'], ['list-tenants', '-o', 'table'], ['list-tenants', '-o', 'wide']]) {
      const r = await runCli(args, { cwd: ws.dir });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('\\x1b]0;pwned\\x07 end');
      expect(r.stdout).toContain('\\x1b]52;c;Y2xpcA==\\x07');
      // A carriage return is \x0d piped too (the data as it is, not a space); SGR shown, not deleted.
      expect(r.stdout).toContain('We \\x1b[31mRED\\x1b[0m \\x1b]0;pwned\\x07 end\\x0dX');
      expect(r.stdout).toContain(HIDDEN_SHOWN);
      // No ESC at all (NO_COLOR), no BEL, no CR.
      expect(r.stdout).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
      // One row per tenant: the line feed in the name splits nothing.
      const row = r.stdout.split('\n').find((l) => l.includes('hidden'));
      expect(row).toContain('next\\x09col');
    }
    // Piped: a header and one tab-separated row of five columns per tenant.
    const piped = await runCli(['list-tenants'], { cwd: ws.dir });
    expect(piped.stdout.split('\n').filter(Boolean).map((l) => l.split('\t').length)).toEqual([5, 5, 5]);
    // -o wide piped: every column, as rows too (it drew a box into the pipe); -o table asked for by name keeps its box.
    const wide = await runCli(['list-tenants', '-o', 'wide'], { cwd: ws.dir });
    expect(wide.stdout.split('\n').filter(Boolean).map((l) => l.split('\t').length)).toEqual([5, 5, 5]);
    expect(wide.stdout).not.toMatch(/[│┌─]/);
    expect((await runCli(['list-tenants', '-o', 'table'], { cwd: ws.dir })).stdout).toMatch(/[│┌─]/);
    const json = await runCli(['list-tenants', '--json'], { cwd: ws.dir });
    const names = Object.fromEntries((JSON.parse(json.stdout) as Array<{ id: string; name: string }>).map((t) => [t.id, t.name]));
    expect(names.weird).toBe('We \x1b[31mRED\x1b[0m \x1b]0;pwned\x07 end\rX \x1b]52;c;Y2xpcA==\x07');
    expect(names.hidden).toBe(HIDDEN);
  });

  it('with colour (FORCE_COLOR): the table keeps the tool\'s own colour, the data\'s SGR is shown, not sent', async () => {
    for (const args of [['list-tenants', '-o', 'table'], ['list-tenants']]) {
      const r = await runCli(args, { cwd: ws.dir, env: { NO_COLOR: undefined, FORCE_COLOR: '1' } });
      expect(r.code, r.stderr).toBe(0);
      if (args.length > 1) expect(r.stdout).toMatch(TOOLS_OWN_SGR);
      for (const seq of DATA_SGR) expect(r.stdout).not.toContain(seq);
      expect(r.stdout).toContain(HIDDEN_SHOWN);
      expect(withoutOwnColour(r.stdout)).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
    }
  });

  /** A run on a pseudo-terminal: stdout and stderr together, line feeds as CR LF. */
  const onTerminal = (args: string[], env: Record<string, string>): Promise<CliRun> => runCliOnTerminal(args, /never-asked/, '', env, { cwd: ws.dir });

  it('on a terminal (script), with colour and with NO_COLOR: no data SGR reaches it, the row is one line', async () => {
    for (const env of [{ NO_COLOR: '', TERM: 'xterm-256color' }, { NO_COLOR: '1', TERM: 'xterm-256color' }]) {
      const r = await onTerminal(['list-tenants'], env);
      expect(r.code).toBe(0);
      for (const seq of DATA_SGR) expect(r.stdout).not.toContain(seq);
      expect(r.stdout).toContain(HIDDEN_SHOWN);
      const text = r.stdout.replace(/\r\n/g, '\n');
      if (env.NO_COLOR) expect(text).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
      else {
        expect(text).toMatch(TOOLS_OWN_SGR);
        expect(withoutOwnColour(text)).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
      }
      // The box's row holds the whole name: the line feed in it split nothing.
      expect(text.split('\n').find((l) => l.includes('hidden'))).toContain('next\\x09col');
    }
  });

  it('data in messages: a file name holding ESC [ 31 m is shown as \\x1b in the warning and the report, coloured or not', async () => {
    const bad = workspace({}, { registry: false });
    try {
      bad.writeTenant('ok', 'client:\n  id: ok\n  name: OK\n');
      bad.writeTenant('x', 'client:\n  id: x\n  name: X\n', 'x\x1b[31mred\x07.yaml');
      for (const env of [{}, { NO_COLOR: undefined, FORCE_COLOR: '1' }]) {
        const r = await runCli(['migrate-yaml', '--dry-run'], { cwd: bad.dir, env });
        expect(r.code, r.stderr).toBe(4);
        expect(r.stderr).toContain('x\\x1b[31mred\\x07.yaml');
        expect(r.stdout).toContain('x\\x1b[31mred\\x07.yaml');
        for (const out of [r.stdout, r.stderr]) {
          expect(out).not.toContain('\x1b[31mred');
          expect(withoutOwnColour(out)).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
        }
      }
    } finally {
      bad.cleanup();
    }
  });

  it('jsonText (property): the same document, with DEL and C1 escaped too (JSON.stringify writes them raw)', async () => {
    const { jsonText } = await import('../../src/cli/output.js');
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.string({ unit: fc.integer({ min: 0, max: 0x1ff }).map((c) => String.fromCharCode(c)) })), (value) => {
        const text = jsonText(value, 2);
        expect(JSON.parse(text)).toEqual(value);
        expect(text.replace(/\n {0,4}/g, '')).not.toMatch(/[\x00-\x1f\x7f-\x9f]/);
      }),
    );
  });

  it('yamlDump and jsonText (property): bidirectional overrides, isolates, U+200B, U+2028-2029 and U+FEFF escaped, in keys and values; the same document loads back', async () => {
    const { jsonText } = await import('../../src/cli/output.js');
    const { yamlDump } = await import('../../src/cli/document-text.js');
    const { load } = await import('js-yaml');
    // Marker look-alikes too ("\\0", digits, quotes): a value `"\\00\\0"` beside a hidden character was replaced.
    const unit = fc.constantFrom('a', ' ', ':', '"', '\\', '\\0', '"\\0', '1\\0"', '#', '-', '\0', '\n', '\u200b', '\u2028', '\u2029', '\u202a', '\u202e', '\u2066', '\u2069', '\ufeff', '\u200d', 'é', '0');
    const text = fc.string({ unit, maxLength: 8 });
    const doc = fc.dictionary(text, fc.oneof(text, fc.array(text, { maxLength: 3 }), fc.dictionary(text, text, { maxKeys: 2 })), { maxKeys: 4 });
    const RAW = /[\u200b\u2028-\u202e\u2066-\u2069\ufeff]/;
    const collision = { a: 'x\u202ey', b: '"\\00\\0"', '"\\01\\0"': '|\n"\\00\\0"\n' };
    expect(load(yamlDump(collision, { lineWidth: -1, noRefs: true }))).toEqual(collision);
    fc.assert(
      fc.property(doc, (value) => {
        const yaml = yamlDump(value, { lineWidth: -1, noRefs: true });
        expect(load(yaml)).toEqual(value);
        expect(yaml).not.toMatch(RAW);
        const json = jsonText(value, 2);
        expect(JSON.parse(json)).toEqual(value);
        expect(json).not.toMatch(RAW);
      }),
      { numRuns: 500 },
    );
  });

  it('a value of 3 MB in the YAML view and -o yaml: written, and loads back (js-yaml\'s own writer overflowed the stack: exit 70)', async () => {
    const { yamlDump } = await import('../../src/cli/document-text.js');
    const { load } = await import('js-yaml');
    const big = { notes: 'x'.repeat(3_000_000), list: ['y'.repeat(70_000), 'short'], ['k'.repeat(70_000)]: 1 };
    expect(load(yamlDump(big, { lineWidth: 120 }))).toEqual(big);
    // A tenant file is at most 1 MB: the value comes from the cache, as a service wrote it.
    const { startRedis } = await import('../helpers/redis-server.js');
    const { Redis } = await import('ioredis');
    const server = await startRedis();
    const long = workspace({}, { registry: false });
    try {
      const redis = new Redis(server.url);
      await redis.set('tenant_config:long', JSON.stringify({ client: { id: 'long', name: 'Long' }, notes: 'x'.repeat(3_000_000) }));
      redis.disconnect();
      for (const args of [[], ['-o', 'yaml']]) {
        const r = await runCli(['get-config', 'long', ...args], { cwd: long.dir, env: { REDIS_URL: server.url } });
        expect([r.code, r.stderr]).toEqual([0, '']);
        const doc = load(r.stdout) as { notes?: string; config?: { notes: string } };
        expect((args.length ? doc.config?.notes : doc.notes)?.length).toBe(3_000_000);
      }
    } finally {
      long.cleanup();
      await server.stop();
    }
  });

  it('get-config on a terminal, -o yaml and -o json: a name holding bidirectional isolates, an override and a zero-width space is shown escaped (it was written raw: the line showed reordered)', async () => {
    const bidi = workspace({}, { registry: false });
    try {
      bidi.writeTenant('bidi', 'client:\n  id: bidi\n  name: "admin\\u2066\\u2028x\\u200by\\u2067z"\n"k\\u202ey": 1\n');
      const RAW = /[\u200b\u2028-\u202e\u2066-\u2069]/;
      const view = await runCliOnTerminal(['get-config', 'bidi', '--no-cache'], /never-asked/, '', { NO_COLOR: '1' }, { cwd: bidi.dir });
      expect(view.code).toBe(0);
      expect(view.stdout).toContain('name: "admin\\u2066\\u2028x\\u200by\\u2067z"');
      expect(view.stdout).toContain('"k\\u202ey": 1');
      expect(view.stdout).not.toMatch(RAW);
      const { load } = await import('js-yaml');
      for (const format of ['yaml', 'json']) {
        const r = await runCli(['get-config', 'bidi', '--no-cache', '-o', format], { cwd: bidi.dir });
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).not.toMatch(RAW);
        const doc = (format === 'json' ? JSON.parse(r.stdout) : load(r.stdout)) as { config: Record<string, unknown> };
        expect(doc.config).toMatchObject({ client: { name: 'admin\u2066\u2028x\u200by\u2067z' }, 'k\u202ey': 1 });
      }
    } finally {
      bidi.cleanup();
    }
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

/** Ids typed on the command line: commander quotes a rejected one back, and the line must stay one line, shown. */
describe('a bad id from the command line', () => {
  const cases: Array<[string[], string]> = [
    [['get-config', '\x1b[31mred'], "'\\x1b[31mred'"],
    [['invalidate', 'a\rb'], "'a\\x0db'"],
    [['invalidate', 'a\nb'], "'a\\x0ab'"],
    [['check-permission', 'x\x1b]0;t\x07y', 'f'], "'x\\x1b]0;t\\x07y'"],
  ];
  for (const [args, shown] of cases) {
    it(`${JSON.stringify(args)}: exit 2, one line, the value shown as ${shown}`, async () => {
      const r = await runCli(args);
      expect(r.code, r.stderr).toBe(2);
      expectOneLineError(r);
      expect(r.stderr).toContain(`command-argument value ${shown} is invalid`);
      expect(r.stderr.trimEnd()).not.toMatch(/[\x00-\x1f\x7f-\x9f]/);
    });
  }

  it('an unknown command or option holding ESC is shown too; a typo\'s suggestion joins its line', async () => {
    const unknown = await runCli(['\x1b[31mlst']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe("error: unknown command '\\x1b[31mlst'\n");
    const option = await runCli(['list-tenants', '--\x1b[8mx']);
    expect(option.stderr).toBe("error: unknown option '--\\x1b[8mx'\n");
    const typo = await runCli(['list-tenats']);
    expect(typo.stderr).toBe("error: unknown command 'list-tenats' (did you mean list-tenants?)\n");
  });

  it('commanderErrorText (property): one line (commander\'s suggestion joined to it), no control character, a long run cut', () => {
    const unit = fc.oneof(fc.integer({ min: 0, max: 0xff }).map((c) => String.fromCharCode(c)), fc.constantFrom('\n', '\r', '\x1b', 'a'));
    fc.assert(
      fc.property(fc.string({ unit, maxLength: 300 }), fc.boolean(), (value, suggest) => {
        const text = `error: command-argument value '${value}' is invalid for argument 'tenant'.${suggest ? '\n(Did you mean list-tenants?)' : ''}\n`;
        const shown = commanderErrorText(text);
        const lines = shown.split('\n');
        expect(lines.at(-1)).toBe('');
        expect(lines.slice(0, -1)).toHaveLength(1);
        if (suggest) expect(lines[0].endsWith(' (did you mean list-tenants?)')).toBe(true);
        expect(lines[0]).not.toMatch(/[\x00-\x1f\x7f-\x9f]/);
        expect(lines[0].startsWith("error: command-argument value '")).toBe(true);
        // A run of non-blank characters is cut at 120 (each shown control character taking 4).
        expect(lines[0].length).toBeLessThan(200 + 4 * 121);
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
