import type { ProfileRow } from '../cache/cache-store.js';

/**
 * Per-tenant totals of a profile pass, kept in columns (typed arrays that
 * double as they fill) rather than an object per tenant: 100,000 cached
 * tenants cost a few megabytes, and nothing here grows with the number of keys.
 * Tenants are keyed by their id's bytes (a binary string), so ids that are
 * not UTF-8 are counted apart even when they print alike.
 */
export class TenantTally {
  private readonly index = new Map<string, number>();
  private readonly ids: string[] = [];
  private capacity = 1024;
  private cols = TenantTally.columns(this.capacity);
  private families: Uint32Array;

  constructor(private readonly groups: number) {
    this.families = new Uint32Array(this.capacity * groups);
  }

  /** keys, bytes, ttl<1m, ttl<1h, later, no TTL. */
  private static columns(n: number) {
    return { keys: new Float64Array(n), bytes: new Float64Array(n), minute: new Float64Array(n), hour: new Float64Array(n), later: new Float64Array(n), none: new Float64Array(n) };
  }

  get size(): number {
    return this.ids.length;
  }

  add(row: ProfileRow): void {
    let i = this.index.get(row.tenant);
    if (i === undefined) {
      i = this.ids.length;
      if (i === this.capacity) this.grow();
      this.index.set(row.tenant, i);
      this.ids.push(row.tenant);
    }
    const c = this.cols;
    c.keys[i] += row.keys;
    c.bytes[i] += row.bytes;
    c.minute[i] += row.ttlUnderMinute;
    c.hour[i] += row.ttlUnderHour;
    c.later[i] += row.ttlLater;
    c.none[i] += row.noTtl;
    this.families[i * this.groups + row.group] += row.keys;
  }

  private grow(): void {
    const old = this.cols;
    this.capacity *= 2;
    this.cols = TenantTally.columns(this.capacity);
    for (const k of Object.keys(old) as Array<keyof typeof old>) this.cols[k].set(old[k]);
    const families = new Uint32Array(this.capacity * this.groups);
    families.set(this.families);
    this.families = families;
  }

  /** Tenant positions by memory, largest first (ties by id), the first `limit` of them. */
  byMemory(limit = this.size): number[] {
    const bytes = this.cols.bytes;
    const ids = this.ids;
    const order = Array.from({ length: this.size }, (_, i) => i);
    order.sort((a, b) => bytes[b] - bytes[a] || (ids[a] < ids[b] ? -1 : ids[a] > ids[b] ? 1 : 0));
    return order.slice(0, limit);
  }


  /** The id's bytes as a binary string. */
  id(i: number): string {
    return this.ids[i];
  }

  keys(i: number): number {
    return this.cols.keys[i];
  }

  bytes(i: number): number {
    return this.cols.bytes[i];
  }

  /** One tenant's row, with its keys per family (named by `groupNames`). */
  row(i: number, groupNames: readonly string[]) {
    const c = this.cols;
    const families: Record<string, number> = {};
    for (let g = 0; g < this.groups; g++) {
      const n = this.families[i * this.groups + g];
      if (n) families[groupNames[g]] = n;
    }
    return { keys: c.keys[i], bytes: c.bytes[i], ttl_under_minute: c.minute[i], ttl_under_hour: c.hour[i], ttl_later: c.later[i], no_ttl: c.none[i], families };
  }
}
