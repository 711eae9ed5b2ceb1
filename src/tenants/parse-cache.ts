import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { threadId } from 'node:worker_threads';

/** What a parsed tenant file came to, without its text: the stripped config, or the file error. */
export interface ParsedEntry {
  /** The file's identity when it was parsed (mtime, ctime, size, inode): any edit changes it. */
  stamp: string;
  id: string;
  config?: Record<string, unknown>;
  yamlOnly?: boolean;
  /** The secrets parsing stripped: where they were, never their values. */
  strippedSecrets?: Array<{ path: string[]; kind: 'literal-removed' | 'default-dropped'; line?: number }>;
  error?: { line?: number; detail: string };
  /** The content hash of the registry row the config makes (see TenantDocument.rowHash). */
  rowHash?: string;
}

/** Bumped whenever parsing, stripping, the row mapping or the entry's shape changes: an older file is ignored. */
const FORMAT = 3;

/**
 * Parsed tenant files kept between runs, so a migration of 10,000 unchanged
 * files stats them instead of parsing them again. It lives in the user's
 * cache directory (`$XDG_CACHE_HOME/tenantctl`, else `~/.cache/tenantctl`), one
 * file per tenants directory, never in the project (it must not mark a
 * directory as a project). It holds what the registry holds: configs with their
 * secrets stripped, `${VAR}` references kept. Any failure to read or write it
 * only costs the time it would have saved.
 */
export class ParseCache {
  private dirty = false;

  private constructor(
    private readonly file: string,
    private readonly dir: string,
    private readonly entries: Map<string, ParsedEntry>,
  ) {}

  /** The cache of a tenants directory (empty when there is none yet, or it is unreadable or of another format). */
  static open(tenantsDir: string, env: NodeJS.ProcessEnv = process.env): ParseCache {
    const file = userCacheFile(`tenants-${createHash('sha256').update(path.resolve(tenantsDir)).digest('hex').slice(0, 16)}.json`, env);
    const dir = path.resolve(tenantsDir);
    const data = readCacheFile(file) as { format?: number; dir?: string; entries?: Record<string, ParsedEntry> } | undefined;
    const entries = data?.format === FORMAT && data.dir === dir && data.entries ? new Map(Object.entries(data.entries)) : new Map<string, ParsedEntry>();
    return new ParseCache(file, dir, entries);
  }

  /** The entry of a file, if it was parsed with exactly this stamp. */
  get(file: string, stamp: string): ParsedEntry | undefined {
    const e = this.entries.get(file);
    return e?.stamp === stamp ? e : undefined;
  }

  put(file: string, entry: ParsedEntry): void {
    this.entries.set(file, entry);
    this.dirty = true;
  }

  /** Writes the cache when something changed. */
  save(): void {
    if (!this.dirty) return;
    writeCacheFile(this.file, { format: FORMAT, dir: this.dir, entries: Object.fromEntries(this.entries) });
    this.dirty = false;
  }
}

/** A file in the user's cache directory: `$XDG_CACHE_HOME/tenantctl`, else `~/.cache/tenantctl`. */
export function userCacheFile(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME || path.join(env.HOME || os.homedir() || os.tmpdir(), '.cache');
  return path.join(base, 'tenantctl', name);
}

/**
 * Writes a cache file as JSON: a temporary file renamed over it (a reader
 * never sees half of one; two writers, the last one wins), readable by this
 * user only. A cache that cannot be written is only slower next time.
 */
export function writeCacheFile(file: string, data: unknown): void {
  try {
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}-${threadId}.tmp`;
    writeFileSync(tmp, JSON.stringify(data), { mode: 0o600 });
    renameSync(tmp, file);
  } catch {
    /* only slower next time */
  }
}

/** Reads a cache file written by writeCacheFile; undefined when there is none or it is unreadable. */
export function readCacheFile(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}
