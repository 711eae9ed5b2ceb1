import { describe, expect, it } from 'vitest';
import { parseChangePayload } from '../../src/registry/change-feed.js';

describe('parseChangePayload: a notification as the changes it means', () => {
  it('an UPDATE that changed a row\'s id invalidates both ids (the new and the old)', () => {
    const r = parseChangePayload('{"t":"tenants","op":"UPDATE","id":"b","old_id":"a"}');
    expect('changes' in r && r.changes.map((c) => 'id' in c && c.id)).toEqual(['b', 'a']);
  });

  it('an id no key may hold, an unknown table, or not JSON: ignored, with why', () => {
    expect(parseChangePayload('{"t":"tenants","op":"UPDATE","id":"acme*"}')).toMatchObject({ ignored: expect.stringMatching(/not a valid tenant id/) });
    expect(parseChangePayload('{"t":"other","id":"a"}')).toMatchObject({ ignored: expect.stringMatching(/unknown table/) });
    expect(parseChangePayload('nope')).toEqual({ ignored: 'not JSON' });
  });
});
