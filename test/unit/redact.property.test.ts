import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { clipLongRuns, maskArgument, maskUrl, maskUrlsIn, showControls } from '../../src/redact.js';

/** Passwords as people write them: printable, no blanks (a blank ends a URL in free text). */
const password = fc.stringMatching(/^[A-Za-z0-9!$%&()*+,;=~._:@/#?-]{6,24}$/).filter((p) => /[A-Za-z0-9]{3}/.test(p));
const blanks = fc.stringMatching(/^[ \t]{0,3}$/);
const scheme = fc.constantFrom('redis', 'rediss', 'postgres', 'postgresql', 'postgresql+asyncpg', 'https');

describe('maskUrlsIn (property)', () => {
  // What it replaced: a regular expression that backtracked quadratically on long runs of letters.
  const byRegex = (text: string) => text.replace(/[a-z][a-z0-9+.-]*:\/\/[^\s'"]+/gi, (u) => maskUrl(u));
  it('finds the URLs that /[a-z][a-z0-9+.-]*:\\/\\/[^\\s\'"]+/gi finds, and masks them alike', () => {
    const piece = fc.constantFrom('redis', 'x', 'A', '1', '+', '.', '-', ':', '/', '://', ':// ', 'u:pw@h', '@', ' ', "'", '"', 'é', '\t', 'postgres://a:b@c/d');
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 14 }).map((p) => p.join('')), (text) => {
        expect(maskUrlsIn(text)).toBe(byRegex(text));
      }),
      { numRuns: 3000 },
    );
  });
  it('reads a long run of letters before a URL once (an 80,000-letter value took 8 s, 150,000 half a minute)', () => {
    const text = `${'a'.repeat(150_000)} see redis://u:secretpw@h:6379 and ${'b'.repeat(150_000)}`;
    // A hang guard, not a performance goal: one pass takes milliseconds, the backtracking pattern half a minute.
    // (A test timeout cannot fire while a synchronous call runs, so the time is asserted.)
    const start = performance.now();
    const shown = maskUrlsIn(text);
    expect(maskUrlsIn(`${'9'.repeat(150_000)}://`)).toBe(`${'9'.repeat(150_000)}://`);
    // And many `://` with no scheme before them (each was read to the next blank: a review, 50 s for 120 KB).
    expect(maskUrlsIn('://'.repeat(50_000))).toBe('://'.repeat(50_000));
    expect(maskUrlsIn('1://'.repeat(40_000))).toBe('1://'.repeat(40_000));
    expect(performance.now() - start).toBeLessThan(5000);
    expect(shown).not.toContain('secretpw');
    expect(shown.length).toBeGreaterThan(300_000);
  });
});

describe('maskUrl (property)', () => {
  it('never shows the password of a URL, with or without leading blanks (new URL() trims them, so the drivers use such a URL)', () => {
    fc.assert(
      fc.property(blanks, scheme, fc.constantFrom('', 'admin'), password, (lead, s, user, pw) => {
        const url = `${lead}${s}://${user}:${pw}@db.internal:6379/0`;
        const shown = maskUrl(url);
        expect(shown).not.toContain(pw);
        expect(shown).toContain('db.internal');
        expect(maskUrlsIn(`failed: ${url.trim()} refused`)).not.toContain(pw);
      }),
    );
  });

  it('masks the password word of a libpq connection string ("host=h password=pw") and credential query parameters', () => {
    fc.assert(
      fc.property(password.filter((p) => !/[\s&;#?=@]/.test(p)), (pw) => {
        expect(maskUrl(`host=127.0.0.1 user=postgres password=${pw} dbname=test`)).toBe('host=127.0.0.1 user=postgres password=**** dbname=test');
        expect(maskUrl(`password=${pw} host=h`)).toBe('password=**** host=h');
        // libpq allows blanks around "=" and quoted values.
        expect(maskUrl(`host = h password = ${pw} dbname = d`)).toBe('host = h password = **** dbname = d');
        expect(maskUrl(`host=h password='${pw} x\\'y' dbname=d`)).toBe('host=h password=**** dbname=d');
        expect(maskUrl(`postgres://h/db?sslmode=require&password=${pw}`)).toBe('postgres://h/db?sslmode=require&password=****');
        // The first parameter right after "?" (a URL's start and its path are no parameter name).
        expect(maskUrl(`postgres://u@h:5/db?sslpassword=${pw}&application_name=x`)).toBe('postgres://****@h:5/db?sslpassword=****&application_name=x');
      }),
    );
  });

  it('a command-line argument that is a URL (or --flag=URL) is masked whole: a password with a blank or a quote too (the audit log kept it)', () => {
    fc.assert(
      fc.property(scheme, fc.stringMatching(/^[A-Za-z0-9 '"\t!$%&*+,;=~._-]{6,24}$/).filter((p) => /[A-Za-z0-9]{4}/.test(p) && /[ '"\t]/.test(p)), (s, pw) => {
        const url = `${s}://:${pw}@127.0.0.1:7699`;
        expect(maskArgument(url)).toBe(`${s}://:****@127.0.0.1:7699`);
        expect(maskArgument(`--redis-url=${url}`)).toBe(`--redis-url=${s}://:****@127.0.0.1:7699`);
      }),
    );
    expect(maskArgument('acme')).toBe('acme');
    expect(maskArgument('--json')).toBe('--json');
  });

  it('masks a URL missing its scheme\'s colon ("redis//u:pw@h") and camelCase credential parameters (ioredis\'s sentinelPassword, requirepass): both were shown whole (a probe)', () => {
    fc.assert(
      fc.property(password.filter((p) => !/[\s&;#?=@/]/.test(p)), (pw) => {
        expect(maskUrl(`redis//u:${pw}@h:1`)).toBe('redis//u:****@h:1');
        expect(maskUrl(`postgresql//app:${pw}@db.internal:5432/app`)).toBe('postgresql//app:****@db.internal:5432/app');
        expect(maskUrl(`redis://127.0.0.1:6379?sentinelPassword=${pw}&requirepass=${pw}`)).toBe('redis://127.0.0.1:6379?sentinelPassword=****&requirepass=****');
      }),
    );
  });

  it('leaves a URL without credentials as it is', () => {
    expect(maskUrl(' redis://127.0.0.1:6379/0')).toBe(' redis://127.0.0.1:6379/0');
    expect(maskUrl('postgres://h/db?sslmode=require')).toBe('postgres://h/db?sslmode=require');
  });
});

/** Any character of the first 512 code points: C0, DEL, C1, Latin-1 and beyond. */
const anyText = (maxLength = 60) =>
  fc.string({ unit: fc.oneof(fc.integer({ min: 0, max: 0x1ff }).map((c) => String.fromCharCode(c)), fc.constantFrom('\x1b[31m', '\x1b[8m', '\x1b]0;t\x07', '\r\n', '\t')), maxLength });

/** Reads `\xNN` and `\u{N}` back (the inverse of showControls for text without a backslash of its own). */
const unshow = (s: string) => s.replace(/\\x([0-9a-f]{2})|\\u\{([0-9a-f]+)\}/g, (_m, h?: string, u?: string) => String.fromCharCode(parseInt(h ?? u!, 16)));

describe('showControls (property): data made safe for a terminal', () => {
  it('leaves no control character at all: no ESC (so no SGR, OSC or CSI sequence), no tab, CR or LF, no DEL, no C1', () => {
    fc.assert(
      fc.property(anyText(), (text) => {
        expect(showControls(text)).not.toMatch(/[\x00-\x1f\x7f-\x9f]/);
        // One line whatever the data: a line feed in a value never splits a row.
        expect(showControls(text).split('\n')).toHaveLength(1);
      }),
    );
  });

  it('shows each one-byte control (C0, DEL) as \\xNN, a C1 control as \\u{NN}, and changes nothing else: the data can be read back', () => {
    fc.assert(
      fc.property(anyText().filter((t) => !t.includes('\\')), (text) => {
        const shown = showControls(text);
        expect(unshow(shown)).toBe(text);
        const controls = text.match(/[\x00-\x1f\x7f]/g)?.length ?? 0;
        const c1 = text.match(/[\x80-\x9f]/g)?.length ?? 0;
        expect(shown.length).toBe(text.length + 3 * controls + 5 * c1);
        if (!controls && !c1) expect(shown).toBe(text);
      }),
    );
  });

  it('shows bidirectional overrides and isolates and line separators as \\u{NNNN} (an id read backwards); joiners stay (Persian names, emoji)', () => {
    const invisible = fc.constantFrom(...[0x200b, 0x2028, 0x2029, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069, 0xfeff].map((c) => String.fromCharCode(c)));
    expect(showControls('\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 \u{1F468}\u200d\u{1F469}')).toBe('\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 \u{1F468}\u200d\u{1F469}');
    fc.assert(
      fc.property(fc.string({ unit: fc.oneof(invisible, fc.constantFrom('a', 'é', '-', '.')) }), (text) => {
        const shown = showControls(text);
        expect(shown).not.toMatch(/[\u200b\u2028-\u202e\u2066-\u2069\ufeff]/);
        expect(shown.replace(/\\u\{([0-9a-f]+)\}/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)))).toBe(text);
      }),
    );
    expect(showControls('acme\u202eexe.')).toBe('acme\\u{202e}exe.');
  });

  it('is idempotent, and commutes with clipping a long run: clipped then shown is still one safe line', () => {
    fc.assert(
      fc.property(anyText(300), (text) => {
        expect(showControls(showControls(text))).toBe(showControls(text));
        expect(showControls(clipLongRuns(`value '${text}' is invalid`))).not.toMatch(/[\x00-\x1f\x7f-\x9f]/);
      }),
    );
  });
});
