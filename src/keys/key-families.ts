import { UsageError } from '../errors.js';
import { escapeGlob, prefixesGlob } from './glob.js';
import { ID_CHARS, parseId } from './ids.js';
import {
  commonTenantGlob, dispatchPrefix, fixedKey, isFixedPattern, literalPrefix, overlapExample, patternToLua, patternToRegexSource, TENANT_PLACEHOLDER,
} from './key-patterns.js';

export { patternToGlob } from './key-patterns.js';

/**
 * A key family: the cache keys of one kind, each key holding exactly one
 * tenant (or business) id. A pattern is literal text with one `{tenant}` and
 * optional `*` wildcards (any run of characters), for example
 * `dashboard_kpis:{tenant}:*` or `fastapi_template:tenant-{tenant}:*`.
 */
export interface KeyFamily {
  name: string;
  patterns: string[];
  /** TTL in seconds for keys the tool writes in this family; undefined = not written by the tool. */
  ttl?: number;
}

/** The resources whose per-tenant keys the services cache today, with their TTLs (DESIGN.md). */
export const DEFAULT_RESOURCES: Readonly<Record<string, number>> = {
  dashboard_kpis: 300,
  dashboard_trends: 300,
  dashboard_alerts: 300,
  dashboard_insights: 300,
  dashboard_stats: 300,
  dashboard_activity: 300,
  products: 600,
  pricing_trends: 600,
  sentiment_overview: 900,
  forecast_demand: 1800,
};

export const TENANT_CONFIG_FAMILY = 'tenant_config';
export const PERMISSIONS_FAMILY = 'permissions';

const TENANT = TENANT_PLACEHOLDER;
const ID_CHAR = new RegExp(`^[${ID_CHARS}]$`);

/** The family names and patterns of the design's three defaults plus any declared ones. */
export function buildFamilies(options: {
  ttl: number;
  permissionsTtl?: number;
  resources?: Record<string, number>;
  extra?: KeyFamily[];
}): KeyFamily[] {
  const families: KeyFamily[] = [
    { name: TENANT_CONFIG_FAMILY, patterns: [`tenant_config:${TENANT}`], ttl: options.ttl },
    { name: PERMISSIONS_FAMILY, patterns: [`permissions:${TENANT}`], ttl: options.permissionsTtl ?? options.ttl },
  ];
  // Endpoint data is one family per resource, so counts and TTLs stay per resource.
  for (const [resource, ttl] of Object.entries(options.resources ?? DEFAULT_RESOURCES)) {
    families.push({ name: resource, patterns: [`${resource}:${TENANT}`, `${resource}:${TENANT}:*`], ttl });
  }
  for (const f of options.extra ?? []) families.push(f);
  const seen = new Set<string>();
  for (const f of families) {
    if (seen.has(f.name)) throw new UsageError(`key family "${f.name}" is declared twice`);
    seen.add(f.name);
    for (const p of f.patterns) validatePattern(f.name, p);
  }
  return families;
}

/**
 * Refuses families that can give one key to two different tenants (see overlapExample; the
 * configuration's check, while the sweep and the client still give a key two families claim to the
 * one declared first): first-declared-wins would give it to one tenant while a one-tenant
 * invalidation through the other family deleted it for another. Families that give a key to the
 * same tenant pass.
 */
export function assertNoOverlap(families: KeyFamily[]): void {
  // Two patterns can claim one key only if the literal start of one begins the other's (every pattern starts
  // with literal text): sorted by it, each is compared with the run after it that begins with its start. Every
  // pair was compared before, on every command: 4,000 resources took a minute, deaf to SIGTERM (a probe).
  const all = families
    .flatMap((family, f) => family.patterns.map((pattern) => ({ f, pattern, start: pattern.slice(0, pattern.search(/\*|\{tenant\}/)) })))
    .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : a.f - b.f));
  for (let i = 0; i < all.length; i++) {
    for (let j = i + 1; j < all.length && all[j].start.startsWith(all[i].start); j++) {
      const [a, b] = all[i].f < all[j].f ? [all[i], all[j]] : [all[j], all[i]];
      if (a.f === b.f) continue;
      const key = overlapExample(a.pattern, b.pattern);
      if (key !== undefined) {
        throw new UsageError(`key families "${families[a.f].name}" (${a.pattern}) and "${families[b.f].name}" (${b.pattern}) can claim the same key (${JSON.stringify(key)}): make their literal text tell them apart`);
      }
    }
  }
}

/**
 * Refuses patterns for which "the keys of tenant acme" would be ambiguous:
 * `{tenant}` must appear once, be followed by the end or a character no id
 * may hold (so `acme` never owns a key of `acme2` or `acme-eu`), and a
 * wildcard before it must be separated by such a character too. A pattern must
 * start with literal text, so no family can swallow unrelated keys like `sessions:...`.
 */
export function validatePattern(family: string, pattern: string): void {
  const fail = (why: string): never => {
    throw new UsageError(`key family "${family}": pattern ${JSON.stringify(pattern)} ${why}`);
  };
  const at = pattern.indexOf(TENANT);
  if (at < 0 || pattern.indexOf(TENANT, at + 1) >= 0) fail('must contain {tenant} exactly once');
  const rest = pattern.replace(TENANT, '');
  if (/[{}?[\]\\]/.test(rest)) fail('may use only literal text, * and one {tenant}');
  if (at === 0 || pattern[0] === '*') fail('must start with literal text');
  const after = pattern[at + TENANT.length];
  if (after !== undefined && (ID_CHAR.test(after) || after === '*')) fail('must have a separator such as ":" after {tenant}');
  const before = pattern[at - 1];
  if (pattern.slice(0, at).includes('*') && (ID_CHAR.test(before) || before === '*')) {
    fail('must have a separator such as ":" before {tenant} when a * precedes it');
  }
  // A * matches separators too: with one on each side, `app:*:{tenant}:*` gives app:eu:globex:acme:v1 to
  // globex and to acme (invalidate globex deleted acme's key). One side only, the tenant is where it ends.
  if (pattern.slice(0, at).includes('*') && pattern.slice(at).includes('*')) fail('may have a * before {tenant} or after it, not both (a key could then hold two tenants)');
}

/** A key's owner: the family it belongs to and the tenant it holds. */
export interface KeyOwner {
  family: string;
  tenant: string;
}

/**
 * One family pattern compiled for a sweep over the keyspace: the server
 * tests a key against the rules filed under its dispatch prefix (then the
 * rules with none), and the first match in declaration order puts it in
 * `group`, as the client's RegExp alternation does (two families may claim
 * one key: `ov{tenant}:*` and `ova:{tenant}` both claim `ova:a`).
 */
export interface KeyRule {
  /** Index into SweepRules.groups. */
  group: number;
  /** The key's bytes up to its first `:` that this rule needs, or "" (see dispatchPrefix). */
  dispatch: string;
  /** Anchored Lua pattern of the key's bytes after `dispatch` (all of them when it is ""), tenant captured. */
  lua: string;
  /** The same without the capture: cheaper where only the family matters (count, unlink). */
  luaPlain: string;
  /** The same as a RegExp over binary (latin1) strings. */
  regex: RegExp;
}

/** Rules plus the names of their groups (family names). */
export interface SweepRules {
  groups: string[];
  rules: KeyRule[];
  /**
   * A SCAN MATCH glob that every key a rule can claim matches (built from the
   * patterns' literal starts, see prefixesGlob), or undefined: a sweep with no
   * narrower glob of its own lets the server drop the other keys first.
   */
  prefilter?: string;
}

/** Builds concrete keys and classifies keys for a set of families. */
export class KeySpace {
  private readonly anyTenant: (key: string) => KeyOwner | undefined;

  constructor(readonly families: KeyFamily[]) {
    this.anyTenant = this.compile(undefined, undefined);
  }

  family(name: string): KeyFamily {
    const f = this.families.find((x) => x.name === name);
    if (!f) throw new UsageError(`unknown key family "${name}"`, { reason: 'unknown-family' });
    return f;
  }

  /** The key of `tenant` in a family, with optional `:`-joined params (`days`, `30`). */
  key(familyName: string, tenant: string, ...params: string[]): string {
    parseId(tenant);
    const base = this.family(familyName).patterns[0];
    if (!isFixedPattern(base)) {
      throw new UsageError(`key family "${familyName}" has a wildcard pattern; it has no single key`);
    }
    const key = fixedKey(base, tenant);
    return params.length ? `${key}:${params.join(':')}` : key;
  }

  /** The family and tenant of a key (a binary string), or undefined for a key that is not the tool's. */
  classify(key: string): KeyOwner | undefined {
    return this.anyTenant(key);
  }

  /**
   * An exact, anchored matcher for the keys of the given tenants (in the
   * given families, or all): no other tenant's key ever matches.
   */
  matcher(tenants: string[], familyNames?: string[]): (key: string) => KeyOwner | undefined {
    tenants.forEach((t) => parseId(t));
    return this.compile(tenants, familyNames);
  }

  private selected(familyNames?: string[]): KeyFamily[] {
    familyNames?.forEach((n) => this.family(n));
    return familyNames ? this.families.filter((f) => familyNames.includes(f.name)) : this.families;
  }

  private compile(tenants: string[] | undefined, familyNames: string[] | undefined): (key: string) => KeyOwner | undefined {
    const names: string[] = [];
    const alternatives: string[] = [];
    for (const f of this.selected(familyNames)) {
      for (const p of f.patterns) {
        // Two capture groups per alternative: the whole pattern, then the tenant.
        alternatives.push(`(${patternToRegexSource(p, tenants)})`);
        names.push(f.name);
      }
    }
    if (alternatives.length === 0 || tenants?.length === 0) return () => undefined;
    const re = new RegExp(`^(?:${alternatives.join('|')})$`);
    return (key) => {
      const m = re.exec(key);
      if (!m) return undefined;
      for (let i = 0; i < names.length; i++) {
        if (m[1 + 2 * i] !== undefined) return { family: names[i], tenant: m[2 + 2 * i] };
      }
      return undefined;
    };
  }

  /** The keys of fixed-name patterns (`tenant_config:acme`, `dashboard_kpis:acme`): no scan needed to find them. */
  fixedKeys(tenants: string[], familyNames?: string[]): Array<KeyOwner & { key: string }> {
    tenants.forEach((t) => parseId(t));
    const out: Array<KeyOwner & { key: string }> = [];
    for (const tenant of tenants) {
      for (const f of this.selected(familyNames)) {
        for (const p of f.patterns) if (isFixedPattern(p)) out.push({ key: fixedKey(p, tenant), family: f.name, tenant });
      }
    }
    return out;
  }

  /** True when some selected family has a wildcard pattern (so a tenant's keys cannot all be named). */
  hasWildcards(familyNames?: string[]): boolean {
    return this.selected(familyNames).some((f) => f.patterns.some((p) => !isFixedPattern(p)));
  }

  /**
   * Rules for a sweep: every pattern of the selected families (or only the
   * wildcard ones), for any tenant or for the given tenants only; one group per family.
   */
  rules(options: { tenants?: string[]; families?: string[]; wildcardOnly?: boolean } = {}): SweepRules {
    options.tenants?.forEach((t) => parseId(t));
    const groups: string[] = [];
    const rules: KeyRule[] = [];
    const starts: string[] = [];
    for (const f of this.selected(options.families)) {
      const group = groups.push(f.name) - 1;
      for (const p of f.patterns) {
        if (options.wildcardOnly && isFixedPattern(p)) continue;
        const dispatch = dispatchPrefix(p);
        for (const tenant of options.tenants ?? [undefined]) {
          rules.push({
            group,
            dispatch,
            lua: patternToLua(p, tenant, true, dispatch),
            luaPlain: patternToLua(p, tenant, false, dispatch),
            regex: new RegExp(`^${patternToRegexSource(p, tenant === undefined ? undefined : [tenant])}$`),
          });
          starts.push(literalPrefix(p));
        }
      }
    }
    return { groups, rules, prefilter: prefixesGlob(starts) };
  }

  /**
   * One SCAN MATCH glob that finds a superset of a tenant's wildcard-family
   * keys in a single pass (`*:acme:*` when every such pattern puts `:` around
   * the tenant); each candidate is then re-checked exactly.
   */
  tenantScanGlob(tenant: string, familyNames?: string[]): string {
    parseId(tenant);
    const patterns = this.selected(familyNames).flatMap((f) => f.patterns.filter((p) => !isFixedPattern(p)));
    return patterns.length ? commonTenantGlob(patterns, tenant) : `*${escapeGlob(tenant)}*`;
  }
}
