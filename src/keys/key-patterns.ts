import { escapeGlob, prefixesGlob } from './glob.js';

/**
 * A family pattern (`dashboard_kpis:{tenant}:*`) compiled for the three places
 * keys are matched: a SCAN MATCH glob (the server's pre-filter), a Lua pattern
 * (the server-side sweep script) and a JavaScript RegExp (client-side checks).
 *
 * Key names are bytes. The Lua pattern works on bytes natively; the RegExp
 * works on *binary strings* (each byte one char, `Buffer#toString('latin1')`),
 * so a key that is not UTF-8 is matched, counted and deleted exactly.
 *
 * The tenant slot either names one tenant exactly, or (for whole-family work)
 * matches any run of id characters and non-ASCII bytes: a key a service wrote
 * with a non-ASCII or non-UTF-8 id still belongs to its family, while `:`,
 * `*`, spaces and other ASCII punctuation never become part of a tenant.
 */
export const TENANT_PLACEHOLDER = '{tenant}';

type Segment = { lit: string } | { star: true } | { tenant: true };

function segments(pattern: string): Segment[] {
  const out: Segment[] = [];
  pattern.split(TENANT_PLACEHOLDER).forEach((part, i) => {
    if (i > 0) out.push({ tenant: true });
    part.split('*').forEach((lit, j) => {
      if (j > 0) out.push({ star: true });
      if (lit) out.push({ lit });
    });
  });
  return out;
}

/** UTF-8 bytes of a literal as a binary string. */
const binary = (s: string) => Buffer.from(s, 'utf8').toString('latin1');

/** The SCAN MATCH glob for one pattern; `tenant` undefined means any tenant. */
export function patternToGlob(pattern: string, tenant?: string): string {
  return segments(pattern)
    .map((s) => ('lit' in s ? escapeGlob(s.lit) : 'star' in s ? '*' : tenant === undefined ? '*' : escapeGlob(tenant)))
    .join('');
}

const LUA_MAGIC = /[\^$()%.[\]*+\-?]/g;
/** Lua-escapes a binary string (bytes as chars). */
const escapeLuaBytes = (bytes: string) => bytes.replace(LUA_MAGIC, (c) => `%${c}`);
const escapeLua = (s: string) => escapeLuaBytes(binary(s));
/**
 * Id characters plus every non-ASCII byte, as a Lua set (ranges compare unsigned bytes). Lower case
 * and digits first: Lua tries a set's items in order for every byte of every key a sweep classifies.
 */
const LUA_SLOT = '[a-z0-9A-Z_%.%-\x80-\xff]+';
/** `^` + LUA_SLOT as the text of a Lua string literal (bytes over 127 as `\ddd`: a script is sent as UTF-8). */
export const LUA_SLOT_HEAD_LITERAL = `'^${LUA_SLOT.replace(/[\x80-\xff]/g, (c) => `\\${c.charCodeAt(0)}`)}'`;

/**
 * An anchored Lua pattern whose single capture is the tenant. With `tenant`
 * it matches that tenant's keys only. With `after`, a literal start of the
 * pattern (its dispatch prefix), the pattern is of the rest of the key only: the
 * sweep script has already seen those bytes, and matches from the byte after
 * them (`string.find(key, p, #after + 1)`), so no key pays for them twice.
 */
export function patternToLua(pattern: string, tenant?: string, capture = true, after = ''): string {
  const slot = (inner: string) => (capture ? `(${inner})` : inner);
  let skip = after.length;
  const body = segments(pattern)
    .map((s) => {
      if (!('lit' in s)) return 'star' in s ? '.*' : slot(tenant === undefined ? LUA_SLOT : escapeLua(tenant));
      const bytes = binary(s.lit);
      const rest = bytes.slice(skip);
      if (skip && !bytes.startsWith(after)) throw new Error(`internal: "${after}" does not start the pattern ${pattern}`);
      skip = 0;
      return escapeLuaBytes(rest);
    })
    .join('');
  return `^${body}$`;
}

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
const REGEX_SLOT = '[A-Za-z0-9_.\\-\\x80-\\xff]+';

/**
 * The RegExp source (over binary strings) of one pattern, the tenant in a
 * capture group: `tenants` names the tenants it may match, else any.
 */
export function patternToRegexSource(pattern: string, tenants?: string[]): string {
  return segments(pattern)
    .map((s) => ('lit' in s ? escapeRegex(binary(s.lit)) : 'star' in s ? '[\\s\\S]*' : tenants === undefined ? `(${REGEX_SLOT})` : `(${tenants.map((t) => escapeRegex(binary(t))).join('|')})`))
    .join('');
}

/**
 * The bytes of a key up to and including its first `:` when a pattern's literal
 * start fixes them (`tenant_config:`), else "" (the pattern must be tried on
 * every key). The sweep script looks rules up by this prefix, so a key is tested
 * against the one or two patterns that can match it, not all of them.
 */
export function dispatchPrefix(pattern: string): string {
  const first = segments(pattern)[0];
  if (!first || !('lit' in first)) return '';
  const colon = first.lit.indexOf(':');
  return colon < 0 ? '' : binary(first.lit.slice(0, colon + 1));
}

/** The bytes (a binary string) every key of the pattern starts with: its text before the first `{tenant}` or `*`. */
export function literalPrefix(pattern: string): string {
  const first = segments(pattern)[0];
  return first && 'lit' in first ? binary(first.lit) : '';
}

/** The dispatch prefix of a key given as a binary string (see dispatchPrefix). */
export function keyDispatchPrefix(key: string): string {
  const colon = key.indexOf(':');
  return colon < 0 ? '' : key.slice(0, colon + 1);
}

/** True when the pattern names exactly one key per tenant (no `*`). */
export const isFixedPattern = (pattern: string) => !pattern.includes('*');

/** The one key of a fixed pattern for a tenant. */
export const fixedKey = (pattern: string, tenant: string) => pattern.replace(TENANT_PLACEHOLDER, tenant);

/**
 * The most selective single glob (a binary string) that every key of `tenant` in all these
 * patterns matches: the tenant with the literal text the patterns agree on
 * right before and after it (`*:acme:*` for `x:{tenant}:*` and `y:{tenant}:*`).
 */
export function commonTenantGlob(patterns: string[], tenant: string): string {
  const around = patterns.map((p) => {
    const segs = segments(p);
    const i = segs.findIndex((s) => 'tenant' in s);
    const before = segs[i - 1];
    const after = segs[i + 1];
    // Compared as bytes: two characters outside the BMP can share a UTF-16 unit but no byte sequence.
    return { before: before && 'lit' in before ? binary(before.lit) : '', after: after && 'lit' in after ? binary(after.lit) : '' };
  });
  const commonSuffix = around.map((a) => a.before).reduce((acc, s) => {
    let n = 0;
    while (n < acc.length && n < s.length && acc[acc.length - 1 - n] === s[s.length - 1 - n]) n++;
    return acc.slice(acc.length - n);
  });
  const commonPrefix = around.map((a) => a.after).reduce((acc, s) => {
    let n = 0;
    while (n < acc.length && n < s.length && acc[n] === s[n]) n++;
    return acc.slice(0, n);
  });
  // A superset: every candidate is re-checked exactly against the patterns. Bytes, as every glob
  // the server gets (a binary string, sent as latin1): `données:` is 8 bytes, not 7 chars.
  // It starts with the patterns' literal starts as a prefilter (`[dp][ar][so]…*:acme:*`): other
  // applications' keys fail on their first bytes instead of being searched for `:acme:` at every
  // position (the leading `*`). Each start is cut before the text the `*` must find (the common
  // suffix), so the prefilter never eats it.
  const lead = prefixesGlob(patterns.map((p) => literalPrefix(p)).map((l) => l.slice(0, Math.max(0, l.length - commonSuffix.length))));
  return `${lead ? lead.slice(0, -1) : ''}*${escapeGlob(commonSuffix)}${escapeGlob(binary(tenant))}${escapeGlob(commonPrefix)}*`;
}

/** A pattern as tokens over single bytes: a literal byte, any run (`*`), one id byte, a run of id bytes. */
type Token = { ch: string } | { any: true } | { id1: true } | { idRun: true };

function tokens(pattern: string): Token[] {
  const out: Token[] = [];
  for (const s of segments(pattern)) {
    if ('lit' in s) for (const ch of binary(s.lit)) out.push({ ch });
    else if ('star' in s) out.push({ any: true });
    else out.push({ id1: true }, { idRun: true });
  }
  return out;
}

/** The bytes a tenant slot takes: id characters and every non-ASCII byte (as LUA_SLOT). */
const isSlotByte = (c: string) => /[A-Za-z0-9_.\-\x80-\xff]/.test(c);

/**
 * A key both patterns match with their tenant slots on different bytes of it
 * (slots taking any ids), or undefined when there is none: so, but for rare
 * pairs whose slots can hold the same text at two places (`aa:{tenant}` and
 * `a{tenant}:a` on `aa:a`), a key the two give to different tenants. An
 * over-approximation on purpose: it never misses such a key. Two families
 * that give one key to two tenants (`products:{tenant}:*` and
 * `products:x-{tenant}:*` both claim `products:x-acme:1`, for x-acme and for
 * acme) broke tenant isolation: `invalidate acme`
 * deleted what cache-info counted as x-acme's. Families that give a key to the
 * same tenant (a catch-all beside a sub-family) are fine: the first declared
 * counts it. A search over pairs of automaton states, byte by byte, over the
 * bytes that can make a difference (those of the literals, one other id byte,
 * one other byte), remembering whether the slots have covered the same bytes.
 */
export function overlapExample(p: string, q: string): string | undefined {
  // Both start with literal text: unless one start begins the other, no key begins with both.
  const [pa, pb] = [binary(literalPrefix(p)), binary(literalPrefix(q))];
  if (!pa.startsWith(pb) && !pb.startsWith(pa)) return undefined;
  const a = tokens(p);
  const b = tokens(q);
  const literals = new Set([...a, ...b].flatMap((t) => ('ch' in t ? [t.ch] : [])));
  const alphabet = [...literals, [...'xq7_'].find((c) => !literals.has(c)) ?? 'z', [...' #!'].find((c) => !literals.has(c)) ?? '~'];
  // A run token may take no byte: a state is also every state after the runs it can skip.
  const skip = (ts: Token[], i: number): number[] => {
    const out = [i];
    while (ts[i] && ('any' in ts[i] || 'idRun' in ts[i])) out.push(++i);
    return out;
  };
  type State = { i: number; j: number; differ: boolean; key: string };
  const seen = new Set<string>();
  const queue: State[] = [];
  const push = (i: number, j: number, differ: boolean, key: string) => {
    for (const x of skip(a, i)) {
      for (const y of skip(b, j)) {
        const id = `${x},${y},${differ}`;
        if (seen.has(id)) continue;
        seen.add(id);
        queue.push({ i: x, j: y, differ, key });
      }
    }
  };
  push(0, 0, false, '');
  // One byte from a token: the next state, and whether the byte went into the tenant slot.
  const moves = (t: Token | undefined, i: number, c: string): Array<[number, boolean]> => {
    if (!t) return [];
    if ('ch' in t) return t.ch === c ? [[i + 1, false]] : [];
    if ('any' in t) return [[i, false]];
    if (!isSlotByte(c)) return [];
    return 'id1' in t ? [[i + 1, true]] : [[i, true]];
  };
  while (queue.length) {
    const s = queue.shift()!;
    if (s.differ && s.i === a.length && s.j === b.length) return Buffer.from(s.key, 'latin1').toString('utf8');
    for (const c of alphabet) {
      for (const [x, inA] of moves(a[s.i], s.i, c)) {
        for (const [y, inB] of moves(b[s.j], s.j, c)) push(x, y, s.differ || inA !== inB, s.key + c);
      }
    }
  }
  return undefined;
}
