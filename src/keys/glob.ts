/**
 * Escapes a literal for a Redis SCAN MATCH glob: `* ? [ ] \` (and `^`, `-`
 * which only matter inside brackets) get a backslash, so an id can never widen
 * a pattern (PITFALLS: RedisDesktopManager#5255).
 */
export function escapeGlob(literal: string): string {
  return literal.replace(/[*?[\]\\^-]/g, (c) => `\\${c}`);
}

/** Bracket classes a prefilter glob keeps (see prefixesGlob). */
const MAX_GLOB_CLASSES = 4;

/**
 * A SCAN MATCH glob that every key starting with one of `prefixes` (binary
 * strings) matches: one position per byte up to the shortest prefix, the byte
 * itself where all prefixes agree, a bracket class where they differ
 * (`tenant_config:` and `permissions:` give `[pt]e[nr][am]...*`). The server
 * drops the keys it rules out in C, before a script or the client has to look
 * at them. Undefined when it would rule out nothing (no prefixes, or one empty).
 *
 * It stops before a fifth bracket class: the server tests every key of the
 * keyspace against the glob, and a class costs it ~15 instructions per byte
 * listed (a plain byte a few). Past four classes a position rules out few of the
 * keys the first four let through, while every family key pays for it:
 * measured with callgrind on the bench's keyspace, the glob of the 12 default
 * families cost 837 instructions a key with 9 classes, 470 with 4; with 2, other
 * applications' `sessions:` keys got through to the script and cost more.
 */
export function prefixesGlob(prefixes: string[]): string | undefined {
  if (!prefixes.length) return undefined;
  const shortest = Math.min(...prefixes.map((p) => p.length));
  if (shortest === 0) return undefined;
  let glob = '';
  let classes = 0;
  for (let i = 0; i < shortest; i++) {
    const bytes = [...new Set(prefixes.map((p) => p[i]))].sort();
    if (bytes.length > 1 && ++classes > MAX_GLOB_CLASSES) break;
    // Inside brackets a backslash makes any byte literal (stringmatchlen), so every one that is not a letter or digit gets one.
    glob += bytes.length === 1 ? escapeGlob(bytes[0]) : `[${bytes.map((c) => (/[A-Za-z0-9]/.test(c) ? c : `\\${c}`)).join('')}]`;
  }
  return `${glob}*`;
}

/**
 * Redis's own glob matcher (stringmatchlen in util.c) for `*`, `?`, `[...]` and
 * `\` escapes: used in tests to prove our patterns match exactly what Redis would.
 */
export function globMatches(pattern: string, text: string): boolean {
  const memo = new Map<string, boolean>();
  const match = (p: number, t: number): boolean => {
    const k = `${p},${t}`;
    const hit = memo.get(k);
    if (hit !== undefined) return hit;
    let result: boolean;
    if (p === pattern.length) result = t === text.length;
    else {
      const c = pattern[p];
      if (c === '*') result = match(p + 1, t) || (t < text.length && match(p, t + 1));
      else if (t === text.length) result = false;
      else if (c === '?') result = match(p + 1, t + 1);
      else if (c === '[') {
        let q = p + 1;
        const not = pattern[q] === '^';
        if (not) q++;
        let found = false;
        while (q < pattern.length && pattern[q] !== ']') {
          if (pattern[q] === '\\' && q + 1 < pattern.length) {
            q++;
            if (pattern[q] === text[t]) found = true;
          } else if (pattern[q + 1] === '-' && q + 2 < pattern.length && pattern[q + 2] !== ']') {
            let lo = pattern[q], hi = pattern[q + 2];
            if (lo > hi) [lo, hi] = [hi, lo];
            if (text[t] >= lo && text[t] <= hi) found = true;
            q += 2;
          } else if (pattern[q] === text[t]) found = true;
          q++;
        }
        result = (not ? !found : found) && match(Math.min(q + 1, pattern.length), t + 1);
      } else if (c === '\\' && p + 1 < pattern.length) {
        result = pattern[p + 1] === text[t] && match(p + 2, t + 1);
      } else result = c === text[t] && match(p + 1, t + 1);
    }
    memo.set(k, result);
    return result;
  };
  return match(0, 0);
}
