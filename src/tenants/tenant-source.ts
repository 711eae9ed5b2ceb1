import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { TenantFileError, UsageError, describeError } from '../errors.js';
import { isValidId } from '../keys/ids.js';
import { lineLocator, readYamlFile } from '../yaml/yaml-file.js';
import { stripSecrets, type StrippedSecret } from './secrets.js';
import { isMap } from './plain-object.js';
import { rowFromConfig } from './registry-mapping.js';
import type { ParseCache, ParsedEntry } from './parse-cache.js';

/** A secret stripped from a file, with its line. */
export interface StrippedSecretAt extends StrippedSecret {
  line?: number;
}

/** A tenant as read from its YAML file: secrets stripped, `${VAR}` references kept. */
export interface TenantDocument {
  id: string;
  file: string;
  /** The whole configuration with `client` block, secrets stripped, references unresolved. */
  config: Record<string, unknown>;
  /** `yaml_only: true`: never cached, never migrated. */
  yamlOnly: boolean;
  /** `file:line: …` warnings (literal secrets stripped). */
  warnings: string[];
  /** What was stripped, and where (the warnings say the same in words). */
  strippedSecrets: StrippedSecretAt[];
  /**
   * The content hash of the registry row this file makes (rowFromConfig's
   * tenantctl_hash) as parsed, kept in the parse cache: a migration rerun over
   * 10,000 unchanged files hashes none of them (nor even reads their configs).
   */
  rowHash?: string;
  /** Whether the config has a `subscription` block. */
  hasSubscription: boolean;
  /**
   * The 1-based line of a key path in the file, for later checks' messages.
   * A function, not the text: the text may hold the literal secrets that were stripped.
   */
  lineOf(path: string[]): number | undefined;
}


/**
 * The YAML tenant directory, in both layouts: `<dir>/<id>.yaml|.yml` and the
 * existing deployments' `<dir>/<id>/client.yaml`. Ids with the registry-only
 * prefix are never read from here.
 */
export class YamlTenantSource {
  /** Parsed files by path, valid while the file's mtime and size are unchanged (a long-lived application reads each once). */
  private readonly parsed = new Map<string, { stamp: string; result: TenantDocument | TenantFileError }>();
  /** Parsed files kept between runs (see useParseCache). */
  private persistent: ParseCache | undefined;
  /** When each id was last looked up, and what it gave (see peek). */
  private readonly peeked = new Map<string, { at: number; result: TenantDocument | TenantFileError }>();

  constructor(
    readonly dir: string,
    readonly registryOnlyPrefix = 'tn_',
    /** The directory was named explicitly (flag, env, config file): it must exist. */
    readonly mustExist = false,
  ) {}

  private dirSeen = false;
  /** The directory as path.join writes it, with a trailing separator (see locate). */
  private base: string | undefined;

  /** A directory named explicitly that does not exist is a usage error (a typo must not read as "no tenants"). */
  checkDir(): boolean {
    if (this.dirSeen || (this.dirSeen = existsSync(this.dir))) return true;
    if (this.mustExist) throw new UsageError(`tenants directory ${this.dir} does not exist`, { reason: 'bad-tenants-dir' });
    return false;
  }

  /** True when `id` may live in YAML at all. */
  allows(id: string): boolean {
    return !(this.registryOnlyPrefix && id.startsWith(this.registryOnlyPrefix));
  }

  /** The file of a tenant, or undefined when there is none. */
  fileOf(id: string): string | undefined {
    try {
      return this.locate(id)?.file;
    } catch (err) {
      // There, but unreadable: reading it says why.
      if (err instanceof TenantFileError) return err.file;
      throw err;
    }
  }

  /** The file of a tenant and its stat (one syscall per candidate layout). */
  private locate(id: string): { file: string; stamp: string } | undefined {
    if (!this.checkDir() || !this.allows(id) || !isValidId(id) || id.startsWith('.')) return undefined;
    // A valid id holds no separator: the directory's joined prefix plus the name is what path.join gives.
    this.base ??= path.join(this.dir, '_').slice(0, -1);
    for (const layout of LAYOUTS) {
      const candidate = this.base + id + layout;
      const st = statOrNone(candidate);
      // ctime and inode too: an edit that keeps the mtime (cp -p, a restore) still changes the stamp.
      if (st?.isFile()) return { file: candidate, stamp: `${st.mtimeMs}:${st.ctimeMs}:${st.size}:${st.ino}` };
    }
    return undefined;
  }

  /** Every tenant id with a file, sorted; files that are not tenants (tiers.yaml, bad names) are left out. */
  listIds(): string[] {
    return this.listing().ids;
  }

  /** Files laid out as tenant files whose names are not valid ids (`bad id!.yaml`): reported, never silently skipped. */
  invalidFiles(): string[] {
    return this.listing().invalidFiles;
  }

  /** listIds and invalidFiles from one reading of the directory. */
  listing(): { ids: string[]; invalidFiles: string[] } {
    const ids: string[] = [];
    const invalidFiles: string[] = [];
    for (const c of this.candidates()) {
      if (!isValidId(c.id) || c.id.startsWith('.')) invalidFiles.push(c.file);
      else if (this.allows(c.id) && !RESERVED_FILES.has(c.id)) ids.push(c.id);
    }
    return { ids: ids.sort(), invalidFiles: invalidFiles.sort() };
  }

  private candidates(): Array<{ id: string; file: string }> {
    if (!this.checkDir()) return [];
    const out: Array<{ id: string; file: string }> = [];
    for (const entry of readdirSync(this.dir, { withFileTypes: true })) {
      // A symbolic link counts as what it points to (a Kubernetes ConfigMap mounts every file as one);
      // one that cannot be followed (a loop, no permission) is listed by its name, so reading it says why.
      let target: { isFile(): boolean; isDirectory(): boolean } | undefined = entry;
      if (entry.isSymbolicLink()) {
        try {
          target = statOrNone(path.join(this.dir, entry.name));
        } catch {
          target = { isFile: () => true, isDirectory: () => false };
        }
      }
      if (!target) continue;
      if (target.isFile()) {
        const m = /^(.+)\.ya?ml$/.exec(entry.name);
        if (m) out.push({ id: m[1], file: path.join(this.dir, entry.name) });
      } else if (target.isDirectory()) {
        const file = ['client.yaml', 'client.yml'].map((n) => path.join(this.dir, entry.name, n)).find((f) => existsSync(f));
        if (file) out.push({ id: entry.name, file });
      }
    }
    return out;
  }

  /**
   * Keeps parsed files between runs (for bulk readers: a migration re-reads
   * 10,000 unchanged files as 10,000 stats). Call saveParseCache when done.
   */
  useParseCache(cache: ParseCache): void {
    this.persistent = cache;
  }

  saveParseCache(): void {
    this.persistent?.save();
  }

  /** Loads and validates one tenant; undefined when it has no file. Throws TenantFileError when malformed. */
  load(id: string): TenantDocument | undefined {
    const doc = this.read(id);
    // Callers may change what they get: hand out a copy.
    return doc && { ...doc, config: structuredClone(doc.config), warnings: [...doc.warnings] };
  }

  /**
   * The parsed document itself, not a copy, for callers that only read it
   * (a migration of 10,000 tenants copies none of them). Always as on disk now.
   * Its config is fetched when first asked for (a rerun's unchanged tenants
   * never ask); that access throws TenantFileError if the file changed while
   * it was being read.
   */
  read(id: string): Readonly<TenantDocument> | undefined {
    return this.lookup(id);
  }

  /**
   * Like read, for the hot path of a cached read (which asks only whether a
   * tenant is yaml_only): a file is looked at again at most once a second, so
   * a long-lived application picks up an edited file within a second without
   * a stat per read.
   */
  peek(id: string): Readonly<TenantDocument> | undefined {
    const seen = this.peeked.get(id);
    if (seen && Date.now() - seen.at < RECHECK_MS) {
      if (seen.result instanceof TenantFileError) throw seen.result;
      return seen.result;
    }
    return this.readWhole(id);
  }

  /**
   * Like read, with the config fetched now: a file changed while being read
   * throws here, as TenantFileError, like a bad file (for readers that catch
   * file errors where they read, and then use the config).
   */
  readWhole(id: string): Readonly<TenantDocument> | undefined {
    const doc = this.lookup(id);
    void doc?.config;
    return doc;
  }

  private lookup(id: string): TenantDocument | undefined {
    const where = this.locate(id);
    if (!where) {
      this.peeked.delete(id);
      return undefined;
    }
    const { file, stamp } = where;
    let entry = this.parsed.get(file);
    if (entry?.stamp !== stamp) {
      const persistent = this.persistent;
      const kept = persistent?.get(file, stamp);
      let result: TenantDocument | TenantFileError;
      if (kept) result = fromParsedEntry(file, kept, () => persistent!.config(file, stamp) ?? this.parseAgain(id, file, kept));
      else {
        try {
          result = this.parse(id, file);
        } catch (err) {
          if (!(err instanceof TenantFileError)) throw err;
          result = err;
        }
        persistent?.put(file, toParsedEntry(id, stamp, result), result instanceof TenantFileError ? undefined : result.config);
      }
      entry = { stamp, result };
      this.parsed.set(file, entry);
    }
    this.peeked.set(id, { at: Date.now(), result: entry.result });
    if (entry.result instanceof TenantFileError) throw entry.result;
    return entry.result;
  }

  /**
   * The config of a kept entry whose config is not kept (lost, or of another
   * generation): parsed from the file again, and trusted only if it is what the
   * entry describes; a file changed in between is an error (run again), never
   * a config that does not match the row hash the entry gave.
   */
  private parseAgain(id: string, file: string, kept: ParsedEntry): Record<string, unknown> {
    const doc = this.parse(id, file);
    if (doc.rowHash !== kept.rowHash || doc.yamlOnly !== !!kept.yamlOnly) throw new TenantFileError(file, undefined, 'changed while it was being read; run again');
    return doc.config;
  }

  private parse(id: string, file: string): TenantDocument {
    const { text, doc } = readYamlFile(file);
    // The line index is built only when a line is asked for (an error, a stripped secret).
    let locate: ((p: string[]) => number | undefined) | undefined;
    const lineOf = (p: string[]) => (locate ??= lineLocator(text))(p);
    const fail = (p: string[], reason: string): never => {
      throw new TenantFileError(file, lineOf(p), reason);
    };
    if (!isMap(doc)) fail([], 'a tenant file must be a mapping with a client block');
    const config = doc as Record<string, unknown>;
    if (!isMap(config.client)) fail(['client'], 'missing "client" block');
    const client = config.client as Record<string, unknown>;
    if (client.id === undefined || client.id === null) fail(['client'], 'missing client.id');
    if (String(client.id) !== id) fail(['client', 'id'], `client.id "${String(client.id)}" does not match the file name "${id}"`);
    if (typeof client.name !== 'string' || client.name.trim() === '') fail(['client', 'name'], 'client.name must be a non-empty string');
    if (config.yaml_only !== undefined && typeof config.yaml_only !== 'boolean') fail(['yaml_only'], 'yaml_only must be true or false');

    const { config: stripped, stripped: removed } = stripSecrets(config);
    const secrets = removed.map((s) => ({ ...s, line: lineOf(s.path) }));
    const yamlOnly = config.yaml_only === true;
    const hasSubscription = stripped.subscription !== undefined;
    const parsed: TenantDocument = { id, file, config: stripped, yamlOnly, warnings: strippedWarnings(file, secrets), strippedSecrets: secrets, hasSubscription, lineOf };
    // Hashed when first asked for (a migration, the parse cache), so a get-config of one huge file never pays
    // for it; not enumerable, so load()'s copy does not compute it either.
    let rowHash: string | undefined;
    Object.defineProperty(parsed, 'rowHash', { get: () => (rowHash ??= rowFromConfig(id, stripped).tenantctl_hash!), enumerable: false });
    return parsed;
  }
}

/** What the parse cache keeps of a result: never the text (it may hold the literal secrets that were stripped). */
function toParsedEntry(id: string, stamp: string, result: TenantDocument | TenantFileError): ParsedEntry {
  if (result instanceof TenantFileError) return { stamp, id, error: { line: result.line, detail: result.detail } };
  return { stamp, id, yamlOnly: result.yamlOnly, strippedSecrets: result.strippedSecrets, rowHash: result.rowHash, hasSubscription: result.hasSubscription };
}

/** `file:line: literal secret … stripped` per stripped secret, the file named from the working directory. */
function strippedWarnings(file: string, secrets: StrippedSecretAt[]): string[] {
  return secrets.map((s) => {
    const where = `${path.relative(process.cwd(), file) || file}:${s.line ?? '?'}`;
    return s.kind === 'literal-removed'
      ? `${where}: literal secret ${s.path.join('.')} stripped; put it in an environment variable and write \${VAR}`
      : `${where}: default of secret ${s.path.join('.')} dropped; only the variable is kept`;
  });
}

/** A result back from the parse cache; its lines are found by reading the file again, only if one is asked for. */
function fromParsedEntry(file: string, e: ParsedEntry, configOf: () => Record<string, unknown>): TenantDocument | TenantFileError {
  if (e.error) return new TenantFileError(file, e.error.line, e.error.detail);
  let locate: ((p: string[]) => number | undefined) | undefined;
  const lineOf = (p: string[]) => {
    try {
      return (locate ??= lineLocator(readFileSync(file, 'utf8')))(p);
    } catch {
      return undefined;
    }
  };
  const secrets = e.strippedSecrets ?? [];
  // The config is fetched on first use (most readers of a rerun never ask), then kept.
  let config: Record<string, unknown> | undefined;
  return {
    id: e.id, file, yamlOnly: !!e.yamlOnly, warnings: strippedWarnings(file, secrets), strippedSecrets: secrets, rowHash: e.rowHash, hasSubscription: !!e.hasSubscription, lineOf,
    get config() {
      return (config ??= configOf());
    },
  };
}

/**
 * A path's stat, undefined when nothing is there (or a path component is a
 * file); any other failure (a symbolic-link loop, no permission) is the
 * file's error, said with its name.
 */
function statOrNone(file: string) {
  try {
    return statSync(file, { throwIfNoEntry: false });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new TenantFileError(file, undefined, `cannot be read (${code ?? describeError(err)})`);
  }
}

/** Where a tenant's file may be, after `<dir>/<id>`, in order. */
const LAYOUTS = ['.yaml', '.yml', `${path.sep}client.yaml`, `${path.sep}client.yml`];

/** How long a looked-up file is trusted before it is stat'ed again, ms. */
const RECHECK_MS = 1000;

/** Files in the tenants directory that hold something other than a tenant. */
const RESERVED_FILES = new Set(['tiers']);
