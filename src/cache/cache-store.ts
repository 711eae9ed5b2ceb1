import type { SweepRules } from '../keys/key-families.js';
import { BackendUnavailableError, describeError } from '../errors.js';

/**
 * The cache operations the tool uses, and only those (BullMQ's `IRedisClient`
 * idea): one adapter (ioredis) implements them for a standalone server, a
 * Cluster and a Sentinel-managed master; one contract suite tests them all.
 * Every operation runs under the connection's deadline and fails with a
 * BackendUnavailableError carrying a typed reason.
 */
export interface CacheStore {
  /** Where it points, credentials masked. */
  readonly target: string;
  readonly mode: 'standalone' | 'cluster' | 'sentinel';
  /** The value at `key`, or null. */
  get(key: string): Promise<string | null>;
  /** Values of many keys in order (batched; any slot on a cluster). */
  /** Keys as text, or as bytes (a name that is not UTF-8, or read from a sweep as bytes). */
  mget(keys: Array<string | Buffer>): Promise<Array<string | null>>;
  set(key: string, value: string, ttlSeconds: number): Promise<void>;
  /**
   * set, for a cache fill: written only if the server holding the key runs it within the store's timeout of
   * the fill's start (by that server's clock), so a SET given up on at the timeout cannot land later. True
   * when written, false when run too late. Where the server refuses scripts or TIME, a plain set.
   */
  setUnlessLate?(key: string, value: string, ttlSeconds: number): Promise<boolean>;
  /** Whether each key exists, in order. */
  exists(keys: Array<string | Buffer>): Promise<boolean[]>;
  /** The key's type as TYPE says it ('none' when missing, 'string', 'hash', ...). */
  typeOf(key: string): Promise<string>;
  /** UNLINKs each key (non-blocking delete); 1 or 0 per key, in order. */
  unlink(keys: Array<string | Buffer>): Promise<number[]>;
  /**
   * UNLINKs each key only while it still holds `value` (a service may have
   * rewritten it since it was read); 1 or 0 per entry, in order. Atomic per
   * key where the server runs scripts; else a GET then an UNLINK (a narrower
   * window, not none). Optional: a store of one's own without it gets that
   * GET then UNLINK from its mget and unlink (see unlinkIfUnchangedOn).
   */
  unlinkIfUnchanged?(entries: Array<{ key: string | Buffer; value: string }>): Promise<number[]>;
  /** One pass over the keyspace of every master, applying rules server-side (see SweepRequest). */
  sweep(request: SweepRequest): Promise<SweepResult>;
  /** INFO of every master, parsed. */
  info(): Promise<Array<Record<string, string>>>;
  /** Round trip of a PING to every master (a Cluster answers for all its slots only when each does), ms. */
  ping(): Promise<number>;
  close(): void;
}

/**
 * What a sweep does with each key that a rule claims:
 * - `count`: count it per group;
 * - `unlink`: delete it (at most `limit` keys), count per group;
 * - `collect`: hand it to `onBatch` with its group and tenant;
 * - `profile`: hand `onBatch` each key's group, tenant, MEMORY USAGE and TTL class (never its name).
 */
export type SweepAction = 'count' | 'unlink' | 'collect' | 'profile';

export interface SweepRequest {
  rules: SweepRules;
  action: SweepAction;
  /** SCAN MATCH glob applied by the server before the rules (a superset of what the rules claim). */
  match?: string;
  /** unlink: stop after this many deletions. */
  limit?: number;
  /** Checked between batches: when aborted, the sweep stops and throws InterruptedError with its progress. */
  signal?: AbortSignal;
  /**
   * Called after every batch with that batch's results (for progress, and for
   * collect/profile data); when it returns a promise, that master's next batch
   * waits for it (back-pressure for a slow consumer). A sweep that only reads
   * may already have asked for one more batch; never more than one.
   */
  onBatch?: (batch: SweepBatch) => void | Promise<void>;
}

/** A key claimed by a rule, as bytes. */
export interface ClaimedKey {
  key: Buffer;
  group: number;
  tenant: Buffer;
}

/** When a key's TTL ends: 1 within a minute, 2 within an hour, 3 later, 4 never (no TTL); 0 the key went meanwhile. */
export type TtlClass = 0 | 1 | 2 | 3 | 4;

/**
 * Called once per profiled key, never with its name: its group, its tenant
 * id's bytes (`tenant[start..end)`, a view that is only valid during the
 * call), its MEMORY USAGE and its TTL class. Views, not strings, so a pass
 * over millions of keys allocates nothing per key.
 */
export type ProfileVisitor = (group: number, tenant: Buffer, start: number, end: number, bytes: number, ttl: TtlClass) => void;

/** A batch's profiled keys. */
export interface ProfileBatch {
  forEach(visit: ProfileVisitor): void;
}

export interface SweepBatch {
  /**
   * Keys the rules looked at in this batch: what SCAN returned through the
   * request's MATCH glob or the rules' prefilter (keys the server drops for
   * the glob cost it a little and are not counted).
   */
  scanned: number;
  /** Per group: keys counted or deleted in this batch. */
  groups: number[];
  keys?: ClaimedKey[];
  profile?: ProfileBatch;
  /**
   * How far the whole sweep has got after this batch, 0-1 (every node's SCAN
   * walk, read off the cursors), where the servers' cursors tell: Redis
   * outside Cluster mode. Keys that no rule can claim move it too.
   */
  walked?: number;
}

export interface SweepResult {
  /** Keys the rules looked at (see SweepBatch.scanned). */
  scanned: number;
  /** Per group: keys counted or deleted. */
  groups: number[];
  /** False when the limit stopped it before the end of the keyspace. */
  complete: boolean;
  /** How the server ran it: the server-side script, or client-side (scripting refused). */
  via: 'script' | 'client';
  /** The servers walked: 1, or every master of a Cluster. */
  nodes?: number;
  /**
   * Cluster: slots that were moving between masters during the walk (being migrated at its start or end,
   * or owned by another master at the end): their keys may have been missed or counted twice. A deleting
   * sweep fails instead (PartialFailureError: run again once the resharding is done).
   */
  moving?: number[];
  /** Cluster: the slots among `moving` whose owner changed during the walk (not only marked as migrating). */
  handed?: number[];
}

/** `store.unlinkIfUnchanged`, or for a store without it, a GET then an UNLINK of the keys that still hold their value. */
export async function unlinkIfUnchangedOn(store: CacheStore, entries: Array<{ key: string | Buffer; value: string }>): Promise<number[]> {
  if (store.unlinkIfUnchanged) return store.unlinkIfUnchanged(entries);
  return unlinkStillHolding(entries, await store.mget(entries.map((e) => e.key)), (keys) => store.unlink(keys));
}

/**
 * Answers given for some entries of a list (those at `positions`, in order) placed onto `base`, the
 * answers for all of them (a missing one, from a failure's partial answers, null: unknown).
 */
export function placeAnswers(base: Array<number | null>, positions: number[], answers: ArrayLike<number | null>): Array<number | null> {
  positions.forEach((at, j) => (base[at] = answers[j] ?? null));
  return base;
}

/**
 * The GET-then-UNLINK way (not atomic: a narrower window, not none): given what each key holds `now`,
 * UNLINKs those still holding their value; 1 or 0 per entry, in order. A failure midway carries its
 * answers in `partial` per entry too (null where unknown; it had them per key UNLINKed, which a caller
 * mapped onto the wrong entries).
 */
export async function unlinkStillHolding(
  entries: Array<{ key: string | Buffer; value: string }>,
  now: Array<string | null>,
  unlink: (keys: Array<string | Buffer>) => Promise<number[]>,
): Promise<number[]> {
  const same = entries.flatMap((e, i) => (now[i] === e.value ? [i] : []));
  const perEntry = (answers: ArrayLike<number | null>) => placeAnswers(entries.map(() => 0), same, answers);
  try {
    return perEntry(await unlink(same.map((i) => entries[i].key))) as number[];
  } catch (err) {
    throw err instanceof BackendUnavailableError ? err.withProgress(err.progress, perEntry(Array.isArray(err.partial) ? err.partial : [])) : err;
  }
}

/** Cluster slots as messages say them: "11694", "1-3, 9" (ranges), at most a few shown. */
export function describeSlots(slots: number[]): string {
  const ranges: string[] = [];
  for (let i = 0; i < slots.length; i++) {
    let j = i;
    while (j + 1 < slots.length && slots[j + 1] === slots[j] + 1) j++;
    ranges.push(j > i ? `${slots[i]}-${slots[j]}` : `${slots[i]}`);
    i = j;
  }
  return ranges.length > 5 ? `${ranges.slice(0, 5).join(', ')}, ...` : ranges.join(', ');
}

/**
 * A command the server refuses to run at all, for this user or for everyone: by rights (NOPERM, an ACL
 * failure in a script) or renamed away (`rename-command TIME ""`: "unknown command", and inside a script
 * "Unknown Redis command called from script", which was read as Redis failing: every sweep exit 3 "run
 * again", cache-info "unavailable": a probe). Another way may work (the client does a script's work).
 */
export function refusedCommand(err: unknown): boolean {
  if (!(err instanceof BackendUnavailableError)) return false;
  return err.reason === 'no-permission' || (err.reason === 'rejected' && /unknown (?:redis )?command/i.test(describeError(err.cause ?? err)));
}
