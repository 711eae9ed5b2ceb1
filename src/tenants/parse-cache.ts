import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

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
}

/** Bumped whenever parsing, stripping or the entry's shape changes: an older file is ignored. */
const FORMAT = 2;

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
    const base = env.XDG_CACHE_HOME || path.join(env.HOME || os.homedir() || os.tmpdir(), '.cache');
    const file = path.join(base, 'tenantctl', `tenants-${createHash('sha256').update(path.resolve(tenantsDir)).digest('hex').slice(0, 16)}.json`);
    const dir = path.resolve(tenantsDir);
    let entries = new Map<string, ParsedEntry>();
    try {
      const data = JSON.parse(readFileSync(file, 'utf8')) as { format?: number; dir?: string; entries?: Record<string, ParsedEntry> };
      if (data.format === FORMAT && data.dir === dir && data.entries) entries = new Map(Object.entries(data.entries));
    } catch {
      /* none yet, or unreadable: start empty */
    }
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

  /** Writes the cache when something changed: a temporary file renamed over it, readable by this user only. */
  save(): void {
    if (!this.dirty) return;
    try {
      const entries = Object.fromEntries(this.entries);
      mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
      const tmp = `${this.file}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify({ format: FORMAT, dir: this.dir, entries }), { mode: 0o600 });
      renameSync(tmp, this.file);
      this.dirty = false;
    } catch {
      /* a cache that cannot be written is only slower next time */
    }
  }
}
