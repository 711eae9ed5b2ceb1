import { nodeCrypto, sha256Hex } from '../node-crypto.js';
import { renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { makeCacheDirectory, readOwnCacheFile, userCacheDir } from '../user-cache.js';
import { directoryBase } from './tenant-file.js';
import type { Yaml11Difference } from '../yaml/yaml11.js';
import type { ExposedSecretAt, LossyNumberAt } from './tenant-file.js';

/** What a parsed tenant file came to, without its text or its config (kept apart, see ParseCache). */
export interface ParsedEntry {
  /** The file's identity when it was parsed (mtime, ctime, size, inode): any edit changes it. */
  stamp: string;
  id: string;
  /** Whether the config has a subscription block. */
  hasSubscription?: boolean;
  yamlOnly?: boolean;
  /** The secrets parsing stripped: where they were, never their values. */
  strippedSecrets?: Array<{ path: string[]; kind: 'literal-removed' | 'default-dropped'; line?: number }>;
  /** Plain scalars YAML 1.1 readers read otherwise: where, and as written (the warnings are made from them). */
  yaml11Differences?: Yaml11Difference[];
  error?: { line?: number; detail: string };
  /** The content hash of the registry row the config makes (see TenantDocument.rowHash). */
  rowHash?: string;
  /** Numbers JSON cannot keep as written (see TenantDocument.lossyNumbers). */
  lossyNumbers?: LossyNumberAt[];
  /** Secret-looking values kept as written (see TenantDocument.exposedSecrets). */
  exposedSecrets?: ExposedSecretAt[];
}

/**
 * Bumped whenever parsing, stripping, the row mapping or the files' shape
 * change: older files are ignored. 7: entries keep YAML 1.1 differences (an
 * older entry, which has none, would hide their warnings). 8: `y`/`n` are no
 * longer differences. 9: values that fill registry columns must be scalars.
 * 10: aliases of literal secrets are stripped too. 11: entries keep numbers JSON cannot hold as written.
 * 12: those numbers: hex integers too, not exponents. 13: entries keep secret-looking values kept as written.
 * 14: those numbers: whole floats (`1.0`) too. 15: and the ones not placed at a path.
 * 16: a mapping key that is an alias of a literal secret is stripped too. 17: whole floats past 2^53 too.
 * 18: a key the file writes out itself is kept (16 stripped one that merely equals a secret). 19: alias keys
 * found by the parser (every layout). 20: big integers keep their digits as written.
 */
const FORMAT = 20;

/**
 * An entry as the index file keeps it, under the file's name relative to the
 * tenants directory: [stamp, row hash (0: none), flags (1: yaml_only, 2: has
 * a subscription), what is rarely there]. Tuples rather than objects: the
 * index of 10,000 tenants is ~1.4 MB instead of ~2.5 MB, and parsed in half
 * the time, which a migration rerun pays first.
 */
type StoredEntry = [
  stamp: string,
  rowHash: string | 0,
  flags: number,
  rare?: { id?: string; secrets?: ParsedEntry['strippedSecrets']; yaml11?: ParsedEntry['yaml11Differences']; lossy?: ParsedEntry['lossyNumbers']; exposed?: ParsedEntry['exposedSecrets']; error?: ParsedEntry['error'] },
];

const YAML_ONLY = 1;
const HAS_SUBSCRIPTION = 2;

/** The id a tenant file's name gives (`<id>.yaml`, `<id>/client.yaml`): stored only when the entry's differs. */
function idOfName(name: string): string {
  const sep = name.indexOf(path.sep);
  const head = sep < 0 ? name : name.slice(0, sep);
  // Without split and a RegExp: it runs for every entry of a 10,000-tenant rerun.
  return head.endsWith('.yaml') ? head.slice(0, -5) : head.endsWith('.yml') ? head.slice(0, -4) : head;
}

function toStored(name: string, e: ParsedEntry): StoredEntry {
  const rare: NonNullable<StoredEntry[3]> = {};
  if (e.id !== idOfName(name)) rare.id = e.id;
  if (e.strippedSecrets?.length) rare.secrets = e.strippedSecrets;
  if (e.yaml11Differences?.length) rare.yaml11 = e.yaml11Differences;
  if (e.lossyNumbers?.length) rare.lossy = e.lossyNumbers;
  if (e.exposedSecrets?.length) rare.exposed = e.exposedSecrets;
  if (e.error) rare.error = e.error;
  const stored: StoredEntry = [e.stamp, e.rowHash ?? 0, (e.yamlOnly ? YAML_ONLY : 0) | (e.hasSubscription ? HAS_SUBSCRIPTION : 0)];
  if (Object.keys(rare).length) stored.push(rare);
  return stored;
}

function fromStored(name: string, [stamp, rowHash, flags, rare]: StoredEntry): ParsedEntry {
  const e: ParsedEntry = {
    stamp, id: rare?.id ?? idOfName(name), yamlOnly: !!(flags & YAML_ONLY), hasSubscription: !!(flags & HAS_SUBSCRIPTION), strippedSecrets: rare?.secrets ?? [],
    yaml11Differences: rare?.yaml11 ?? [],
  };
  if (rowHash) e.rowHash = rowHash;
  if (rare?.error) e.error = rare.error;
  if (rare?.lossy) e.lossyNumbers = rare.lossy;
  if (rare?.exposed) e.exposedSecrets = rare.exposed;
  return e;
}

/**
 * Parsed tenant files kept between runs, so a migration of 10,000 unchanged
 * files stats them instead of parsing them again. It lives in the user's
 * cache directory (`$XDG_CACHE_HOME/tenantctl`, else `~/.cache/tenantctl`),
 * never in the project (it must not mark a directory as a project), as two
 * files per tenants directory: an index (each file's stamp, row hash, flags,
 * stripped-secret places, YAML 1.1 differences) read at open, and the configs, read only when a
 * config is asked for. A migration rerun over unchanged files decides from
 * the index alone: it never reads the configs (~7 MB for 10,000 tenants).
 * Both carry one generation: configs of another generation (a run killed
 * between the two writes) count as missing, and a missing config is parsed
 * from its file again. It holds what the registry holds: configs with their
 * secrets stripped, `${VAR}` references kept. Any failure to read or write it
 * only costs the time it would have saved.
 */
export class ParseCache {
  private dirty = false;
  /** Configs as last saved (loaded on first use), valid for the stamps the saved index had. */
  private saved: Map<string, Record<string, unknown>> | undefined;
  /** Entries put in this run (they replace the saved ones). */
  private readonly changed = new Map<string, ParsedEntry>();
  /** Configs parsed in this run, with the stamp each was parsed at. */
  private readonly parsed = new Map<string, { stamp: string; config: Record<string, unknown> }>();

  private constructor(
    private readonly file: string,
    private readonly dir: string,
    /** How the tenant source names files (its directory as given, with a separator): stored names are what follows it. */
    private readonly base: string,
    private generation: string | undefined,
    /** The index as last saved, by file as the source names it. */
    private savedEntries: Map<string, StoredEntry>,
  ) {}

  /** The cache of a tenants directory (empty when there is none yet, or it is unreadable or of another format). */
  static open(tenantsDir: string, env: NodeJS.ProcessEnv = process.env): ParseCache {
    const dir = path.resolve(tenantsDir);
    const file = userCacheFile(`tenants-${sha256Hex(dir).slice(0, 16)}.json`, env);
    // As YamlTenantSource names its files.
    const base = directoryBase(tenantsDir);
    const data = readCacheFile(file) as { format?: number; dir?: string; generation?: string; entries?: Record<string, StoredEntry> } | undefined;
    const valid = data?.format === FORMAT && data.dir === dir && data.entries && typeof data.entries === 'object';
    const entries = new Map<string, StoredEntry>();
    if (valid) for (const name in data.entries) if (Array.isArray(data.entries![name])) entries.set(base + name, data.entries![name]);
    return new ParseCache(file, dir, base, valid ? data.generation : undefined, entries);
  }

  /** The entry of a file, if it was parsed with exactly this stamp. */
  get(file: string, stamp: string): ParsedEntry | undefined {
    const e = this.changed.get(file);
    if (e) return e.stamp === stamp ? e : undefined;
    const stored = this.savedEntries.get(file);
    return stored?.[0] === stamp ? fromStored(file.slice(this.base.length), stored) : undefined;
  }

  /**
   * The config kept for a file as it was at `stamp` (never a later or earlier
   * version's); undefined when it is not kept: then parse the file again.
   */
  config(file: string, stamp: string): Record<string, unknown> | undefined {
    const parsed = this.parsed.get(file);
    if (parsed) return parsed.stamp === stamp ? parsed.config : undefined;
    return this.savedEntries.get(file)?.[0] === stamp ? this.savedConfigs().get(file) : undefined;
  }

  put(file: string, entry: ParsedEntry, config?: Record<string, unknown>): void {
    this.changed.set(file, entry);
    if (config) this.parsed.set(file, { stamp: entry.stamp, config });
    else this.parsed.delete(file);
    this.dirty = true;
  }

  /** Writes both files when something changed: the configs first, then the index that names their generation. */
  save(): void {
    if (!this.dirty) return;
    const generation = nodeCrypto().randomUUID();
    const all = new Map(this.savedEntries);
    for (const [file, e] of this.changed) if (file.startsWith(this.base)) all.set(file, toStored(file.slice(this.base.length), e));
    const configs: Record<string, Record<string, unknown>> = {};
    const index: Record<string, StoredEntry> = {};
    for (const [file, stored] of all) {
      index[file.slice(this.base.length)] = stored;
      if (stored[3]?.error) continue;
      const config = this.config(file, stored[0]);
      if (config) configs[file] = config;
    }
    writeCacheFile(this.configsFile(), { generation, configs });
    writeCacheFile(this.file, { format: FORMAT, dir: this.dir, generation, entries: index });
    // What is on disk now: a later save of this instance builds on it.
    this.generation = generation;
    this.saved = new Map(Object.entries(configs));
    this.savedEntries = all;
    this.changed.clear();
    this.dirty = false;
  }

  private configsFile(): string {
    return this.file.replace(/\.json$/, '.configs.json');
  }

  private savedConfigs(): Map<string, Record<string, unknown>> {
    if (!this.saved) {
      const data = this.generation ? (readCacheFile(this.configsFile()) as { generation?: string; configs?: Record<string, Record<string, unknown>> } | undefined) : undefined;
      this.saved = new Map(data?.generation === this.generation && data?.configs ? Object.entries(data.configs) : []);
    }
    return this.saved;
  }
}

/** A file in the user's cache directory (see userCacheDir). */
export function userCacheFile(name: string, env: NodeJS.ProcessEnv = process.env): string {
  return path.join(userCacheDir(env), name);
}

/**
 * Writes a cache file as JSON: a temporary file renamed over it (a reader
 * never sees half of one; two writers, the last one wins), readable by this
 * user only. A cache that cannot be written is only slower next time.
 */
export function writeCacheFile(file: string, data: unknown): void {
  try {
    makeCacheDirectory(path.dirname(file));
    // Unique per writer (worker threads share the pid); not node:worker_threads' threadId, which would load that module for every command.
    const tmp = `${file}.${process.pid}-${nodeCrypto().randomUUID().slice(0, 8)}.tmp`;
    // 'wx': a new file, never through a link or file someone put at that name.
    writeFileSync(tmp, JSON.stringify(data), { mode: 0o600, flag: 'wx' });
    renameSync(tmp, file);
  } catch {
    /* only slower next time */
  }
}

/** Reads a cache file written by writeCacheFile; undefined when there is none, it is unreadable, or not this user's own. */
export function readCacheFile(file: string): unknown {
  const bytes = readOwnCacheFile(file);
  if (!bytes) return undefined;
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
}
