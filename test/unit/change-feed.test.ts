import { describe, expect, it } from 'vitest';
import { parseChangePayload } from '../../src/registry/change-feed.js';

describe('parseChangePayload: a notification as the changes it means', () => {
  it('an UPDATE that changed a row\'s id invalidates both ids (the new and the old)', () => {
    const r = parseChangePayload('{"t":"tenants","op":"UPDATE","id":"b","old_id":"a"}');
    expect('changes' in r && r.changes.map((c) => 'id' in c && c.id)).toEqual(['b', 'a']);
  });

  it('an id tenantctl refuses, an unknown table, or not JSON: ignored, with why', () => {
    expect(parseChangePayload('{"t":"tenants","op":"UPDATE","id":"acme*"}')).toMatchObject({ ignored: expect.stringMatching(/"acme\*" is not a tenant id tenantctl accepts/) });
    expect(parseChangePayload('{"t":"other","id":"a"}')).toMatchObject({ ignored: expect.stringMatching(/unknown table/) });
    expect(parseChangePayload('nope')).toEqual({ ignored: 'not JSON' });
  });

  it('a rename between a valid id and one tenantctl refuses still invalidates the valid one (a probe: the whole notification was ignored, the old id\'s keys stayed cached)', () => {
    for (const [id, old] of [['tn 00003', 'tn_00003'], ['tn_00003', 'caf\u00e9']]) {
      const r = parseChangePayload(JSON.stringify({ t: 'tenants', op: 'UPDATE', id, old_id: old }));
      expect('changes' in r && r.changes.map((c) => c.id)).toEqual(['tn_00003']);
      expect(r).toMatchObject({ note: expect.stringMatching(/is not a tenant id tenantctl accepts: its keys are not invalidated \("tn_00003": invalidated\)$/) });
    }
    // Both refused: ignored, as before.
    expect(parseChangePayload('{"t":"tenants","op":"UPDATE","id":"a b","old_id":"c d"}')).toMatchObject({ ignored: expect.stringMatching(/"a b" is not a tenant id/) });
  });
});
