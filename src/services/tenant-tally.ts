import type { TtlClass } from '../cache/cache-store.js';

/** FNV-1a over a byte range. */
function hashBytes(buf: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i], 0x01000193);
  return h >>> 0;
}

/**
 * Per-tenant totals of a profile pass. Tenants are found by their id's bytes
 * in an open-addressing table over one byte arena, and their totals kept in
 * columns (typed arrays that double as they fill): counting a key allocates
 * nothing, and 100,000 cached tenants cost a few megabytes. Nothing here grows
 * with the number of keys. Ids that are not UTF-8 are counted apart even when
 * they print alike.
 */
export class TenantTally {
  private arena = Buffer.alloc(64 * 1024);
  private arenaUsed = 0;
  private count = 0;
  private capacity = 1024;
  /** Per tenant: where its id sits in the arena, its length and hash. */
  private idStart = new Int32Array(this.capacity);
  private idLength = new Int32Array(this.capacity);
  private idHash = new Uint32Array(this.capacity);
  /** Hash slots: tenant position + 1, 0 = empty; twice the capacity, a power of two. */
  private slots = new Int32Array(this.capacity * 2);
  /** Per tenant: keys, bytes; keys per TTL class (5 per tenant); keys per group. */
  private keyCount = new Uint32Array(this.capacity);
  private byteCount = new Float64Array(this.capacity);
  private ttl = new Uint32Array(this.capacity * 5);
  private groupKeys: Uint32Array;

  constructor(private readonly groups: number) {
    this.groupKeys = new Uint32Array(this.capacity * groups);
  }

  get size(): number {
    return this.count;
  }

  /** Counts one key of the tenant whose id is `buf[start..end)`. */
  add(group: number, buf: Uint8Array, start: number, end: number, bytes: number, ttl: TtlClass): void {
    const i = this.position(buf, start, end);
    this.keyCount[i] += 1;
    this.byteCount[i] += bytes;
    this.ttl[i * 5 + ttl] += 1;
    this.groupKeys[i * this.groups + group] += 1;
  }

  /** The tenant's position, added if new. */
  private position(buf: Uint8Array, start: number, end: number): number {
    const h = hashBytes(buf, start, end);
    const len = end - start;
    const mask = this.slots.length - 1;
    for (let s = h & mask; ; s = (s + 1) & mask) {
      const at = this.slots[s] - 1;
      if (at < 0) {
        if (this.count === this.capacity) {
          this.grow();
          return this.position(buf, start, end);
        }
        const i = this.count++;
        if (this.arenaUsed + len > this.arena.length) {
          const bigger = Buffer.alloc(Math.max(this.arena.length * 2, this.arenaUsed + len));
          this.arena.copy(bigger, 0, 0, this.arenaUsed);
          this.arena = bigger;
        }
        this.arena.set(buf.subarray(start, end), this.arenaUsed);
        this.idStart[i] = this.arenaUsed;
        this.idLength[i] = len;
        this.idHash[i] = h;
        this.arenaUsed += len;
        this.slots[s] = i + 1;
        return i;
      }
      if (this.idHash[at] === h && this.idLength[at] === len && this.sameBytes(at, buf, start, len)) return at;
    }
  }

  private sameBytes(at: number, buf: Uint8Array, start: number, len: number): boolean {
    const a = this.arena;
    const from = this.idStart[at];
    for (let k = 0; k < len; k++) if (a[from + k] !== buf[start + k]) return false;
    return true;
  }

  private grow(): void {
    const n = this.capacity * 2;
    const widen = <T extends Int32Array | Uint32Array | Float64Array>(old: T, size: number): T => {
      const next = new (old.constructor as new (n: number) => T)(size);
      next.set(old);
      return next;
    };
    this.idStart = widen(this.idStart, n);
    this.idLength = widen(this.idLength, n);
    this.idHash = widen(this.idHash, n);
    this.keyCount = widen(this.keyCount, n);
    this.byteCount = widen(this.byteCount, n);
    this.ttl = widen(this.ttl, n * 5);
    this.groupKeys = widen(this.groupKeys, n * this.groups);
    this.capacity = n;
    this.slots = new Int32Array(n * 2);
    const mask = this.slots.length - 1;
    for (let i = 0; i < this.count; i++) {
      let s = this.idHash[i] & mask;
      while (this.slots[s] !== 0) s = (s + 1) & mask;
      this.slots[s] = i + 1;
    }
  }

  /**
   * The positions of the `limit` largest tenants by memory (ties: by id bytes),
   * largest first, among those `keep` accepts. A selection, not a sort: no
   * string and no array per tenant (100,000 tenants, a top 10).
   */
  largest(limit: number, keep: (i: number) => boolean = () => true): number[] {
    const top: number[] = [];
    if (limit <= 0) return top;
    for (let i = 0; i < this.count; i++) {
      if (top.length === limit && !this.before(i, top[limit - 1])) continue;
      if (!keep(i)) continue;
      // Binary search for its place among the kept, then insert.
      let lo = 0;
      let hi = top.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (this.before(i, top[mid])) hi = mid;
        else lo = mid + 1;
      }
      top.splice(lo, 0, i);
      if (top.length > limit) top.pop();
    }
    return top;
  }

  /** Does tenant `a` rank before tenant `b`: more memory, or as much and a smaller id (byte order). */
  private before(a: number, b: number): boolean {
    const bytes = this.byteCount;
    if (bytes[a] !== bytes[b]) return bytes[a] > bytes[b];
    const arena = this.arena;
    const la = this.idLength[a];
    const lb = this.idLength[b];
    const sa = this.idStart[a];
    const sb = this.idStart[b];
    for (let k = 0; k < la && k < lb; k++) if (arena[sa + k] !== arena[sb + k]) return arena[sa + k] < arena[sb + k];
    return la < lb;
  }

  /** The id's bytes as a binary (latin1) string. */
  id(i: number): string {
    return this.arena.toString('latin1', this.idStart[i], this.idStart[i] + this.idLength[i]);
  }

  keys(i: number): number {
    return this.keyCount[i];
  }

  bytes(i: number): number {
    return this.byteCount[i];
  }

  /** One tenant's row, with its keys per family (named by `groupNames`). */
  row(i: number, groupNames: readonly string[]) {
    const families: Record<string, number> = {};
    for (let g = 0; g < this.groups; g++) {
      const n = this.groupKeys[i * this.groups + g];
      if (n) families[groupNames[g]] = n;
    }
    const t = this.ttl;
    return {
      keys: this.keyCount[i], bytes: this.byteCount[i],
      ttl_under_minute: t[i * 5 + 1], ttl_under_hour: t[i * 5 + 2], ttl_later: t[i * 5 + 3], no_ttl: t[i * 5 + 4], families,
    };
  }
}
