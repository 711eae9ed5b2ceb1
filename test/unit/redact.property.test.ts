import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { maskUrl, maskUrlsIn } from '../../src/redact.js';

/** Passwords as people write them: printable, no blanks (a blank ends a URL in free text). */
const password = fc.stringMatching(/^[A-Za-z0-9!$%&()*+,;=~._:@/#?-]{6,24}$/).filter((p) => /[A-Za-z0-9]{3}/.test(p));
const blanks = fc.stringMatching(/^[ \t]{0,3}$/);
const scheme = fc.constantFrom('redis', 'rediss', 'postgres', 'postgresql', 'postgresql+asyncpg', 'https');

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

  it('leaves a URL without credentials as it is', () => {
    expect(maskUrl(' redis://127.0.0.1:6379/0')).toBe(' redis://127.0.0.1:6379/0');
    expect(maskUrl('postgres://h/db?sslmode=require')).toBe('postgres://h/db?sslmode=require');
  });
});
