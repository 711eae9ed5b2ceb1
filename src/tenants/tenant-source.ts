import { existsSync, lstatSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import path from 'node:path';
import { TenantFileError, UsageError } from '../errors.js';
import { isValidId } from '../keys/ids.js';
import { shownPath } from '../shown-path.js';
import type { ParseCache, ParsedEntry } from './parse-cache.js';
import { directoryBase, fromParsedEntry, isFileLike, LAYOUTS, locateTenantFile, parseTenantFile, statOrNone, tenantFiles, toParsedEntry, type TenantDocument } from './tenant-file.js';

export type { StrippedSecretAt, TenantDocument } from './tenant-file.js';
export { layoutName, LAYOUTS } from './tenant-file.js';

/** Why a tenant with more than one file (both layouts) is not read: its files named as the caller shows them. */
export const manyFilesReason = (id: string, files: string[]): string => `tenant ${id} has ${files.length} files (${files.join(', ')}): keep one`;

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
    /** Ids read as if their files said `yaml_only: true` (the services' hard-coded list: config yaml_only_tenants). */
    private readonly yamlOnlyIds: ReadonlySet<string> = new Set(),
  ) {}

  private dirSeen = false;
  /** The directory as path.join writes it, with a trailing separator (directoryBase). */
  private base: string | undefined;

  /** A directory named explicitly that does not exist is a usage error (a typo must not read as "no tenants"). */
  checkDir(): boolean {
    if (this.dirSeen) return true;
    const stat = statOrNone(this.dir);
    if (stat && !stat.isDirectory()) throw new UsageError(`tenants directory ${this.dir} is not a directory`, { reason: 'bad-tenants-dir' });
    if ((this.dirSeen = !!stat)) return true;
    if (this.mustExist) throw new UsageError(`tenants directory ${this.dir} does not exist`, { reason: 'bad-tenants-dir' });
    return false;
  }

  /** True when `id` may have a file here: a valid id, not registry-only, not hidden. */
  private lookable(id: string): boolean {
    return this.allows(id) && isValidId(id) && !id.startsWith('.');
  }

  /** Listed in yaml_only_tenants: YAML alone answers for it, file or no file (as the services' hard-coded list). */
  listedYamlOnly(id: string): boolean {
    return this.yamlOnlyIds.has(id);
  }

  /** True when `id` may live in YAML at all. */
  allows(id: string): boolean {
    return !(this.registryOnlyPrefix && id.startsWith(this.registryOnlyPrefix));
  }

  /** Every file of a tenant (more than one: ambiguous, see listing). */
  filesOf(id: string): string[] {
    if (!this.checkDir() || !this.lookable(id)) return [];
    this.base ??= directoryBase(this.dir);
    return tenantFiles(this.base, id);
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
    if (!this.checkDir() || !this.lookable(id)) return undefined;
    this.base ??= directoryBase(this.dir);
    return locateTenantFile(this.base, id);
  }

  /** Why `id` has no readable file: none at all, or a link to nothing (listed, as `ls` shows it, but unreadable). */
  whyNoFile(id: string): string {
    return this.brokenLink(id) ?? `no file ${id}.yaml in ${this.dir}`;
  }

  /** A tenant file of `id` that is a link to nothing, a loop or a directory, said as one; undefined when none is. */
  brokenLink(id: string): string | undefined {
    for (const layout of LAYOUTS) {
      const file = path.join(this.dir, id + layout);
      try {
        // Named as the run names files elsewhere (relative to the working directory when below it).
        if (lstatSync(file).isSymbolicLink()) return `${shownPath(file)} is a link to ${readlinkSync(file)}, ${linkEnd(file)}`;
      } catch {
        // Not there either: the next layout.
      }
    }
    return undefined;
  }

  /** Every tenant id with a file, sorted; files that are not tenants (tiers.yaml, bad names) are left out. */
  listIds(): string[] {
    const { ids, ambiguous } = this.listing();
    // A tenant with two files is still a tenant (reads take the first layout that exists).
    return ambiguous.length ? [...ids, ...ambiguous.map((a) => a.id)].sort() : ids;
  }

  /** Files laid out as tenant files whose names are not valid ids (`bad id!.yaml`): reported, never silently skipped. */
  invalidFiles(): string[] {
    return this.listing().invalidFiles;
  }

  /**
   * listIds and invalidFiles from one reading of the directory, and the ids
   * with more than one file (`acme.yaml` and `acme/client.yaml`): which one the
   * services read is not ours to guess, so those are listed apart, not in ids.
   */
  listing(): { ids: string[]; invalidFiles: string[]; ambiguous: Array<{ id: string; files: string[] }>; registryOnlyFiles: string[] } {
    const files = new Map<string, Array<{ file: string; dangling?: boolean }>>();
    const invalidFiles: string[] = [];
    // Files of registry-only ids: never read, but said (migrate-yaml and doctor left them out without a word).
    const registryOnlyFiles: string[] = [];
    for (const c of this.candidates()) {
      if (!isValidId(c.id) || c.id.startsWith('.')) invalidFiles.push(c.file);
      else if (!this.allows(c.id)) registryOnlyFiles.push(c.file);
      else if (!RESERVED_FILES.has(c.id)) {
        const list = files.get(c.id);
        if (list) list.push(c);
        else files.set(c.id, [c]);
      }
    }
    const ids: string[] = [];
    const ambiguous: Array<{ id: string; files: string[] }> = [];
    for (const [id, all] of files) {
      // A link to nothing beside a real file of the other layout is not a second file (reads take the real one).
      const real = all.filter((f) => !f.dangling);
      const list = (all.length > 1 && real.length ? real : all).map((f) => f.file);
      if (list.length === 1) ids.push(id);
      else ambiguous.push({ id, files: list.sort() });
    }
    return { ids: ids.sort(), invalidFiles: invalidFiles.sort(), ambiguous: ambiguous.sort((a, b) => (a.id < b.id ? -1 : 1)), registryOnlyFiles: registryOnlyFiles.sort() };
  }

  private candidates(): Array<{ id: string; file: string; dangling?: boolean }> {
    if (!this.checkDir()) return [];
    const out: Array<{ id: string; file: string; dangling?: boolean }> = [];
    const mangled = new Set<string>();
    for (const entry of readEntries(this.dir)) {
      // Hidden entries are never tenant files: an editor's lock link (`.#acme.yaml`), macOS's `._acme.yaml`,
      // `.git`. They failed a whole migration as "not a valid tenant id".
      if (entry.name.startsWith('.')) continue;
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
      // A link to nothing named like a tenant file is listed too: reading it says so (the tenant is not silently left out).
      const dangling = !target && /\.ya?ml$/s.test(entry.name);
      if (dangling) target = { isFile: () => true, isDirectory: () => false };
      if (!target) continue;
      if (isFileLike(target)) {
        // `s`: a name holding a line break is an invalid id, reported (it was skipped without a word).
        const m = /^(.+)\.ya?ml$/s.exec(entry.name);
        if (m) out.push({ id: m[1], file: path.join(this.dir, entry.name), ...(dangling && { dangling: true }) });
      } else if (target.isDirectory()) {
        // Folders whose names are not UTF-8 and read alike are all looked into at the first of them.
        if (entry.name.includes('\uFFFD')) {
          if (mangled.has(entry.name)) continue;
          mangled.add(entry.name);
        }
        for (const found of folderTenantFiles(this.dir, entry.name)) out.push({ id: entry.name, ...found });
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
        // Not kept when the file changed just before it was read: a same-size rewrite within the same
        // timestamp tick (a few ms here, a second on some file systems) would keep this stamp, and the
        // stale parse would be served from then on ("racily clean", as git says). Parsed again next run.
        if (!changedJustNow(stamp)) persistent?.put(file, toParsedEntry(id, stamp, result), result instanceof TenantFileError ? undefined : result.config);
      }
      // Listed yaml-only: marked here, after the parse cache kept the file's own reading (a run
      // without the setting must not find it marked). The config getter is kept, not called.
      if (!(result instanceof TenantFileError) && !result.yamlOnly && this.yamlOnlyIds.has(id)) {
        result = Object.defineProperties({}, { ...Object.getOwnPropertyDescriptors(result), yamlOnly: { value: true, enumerable: true, writable: true } }) as TenantDocument;
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

  /** Every parse of a file goes through here (tests count them). */
  private parse(id: string, file: string): TenantDocument {
    return parseTenantFile(id, file);
  }
}

/** How long a looked-up file is trusted before it is stat'ed again, ms. */
const RECHECK_MS = 1000;

/** Files in the tenants directory that hold something other than a tenant. */
const RESERVED_FILES = new Set(['tiers']);

/** A file whose content changed this recently (its mtime, ms) is not persisted in the parse cache. */
const RACY_MS = 2000;

/** Whether a stamp (`mtimeMs:ctimeMs:size:ino`) says the content changed within RACY_MS of now (or in the future). */
function changedJustNow(stamp: string): boolean {
  return Date.now() - Number(stamp.split(':')[0]) < RACY_MS;
}

/**
 * A tenant folder's client.yaml (or .yml), as candidates() lists flat files: a link to nothing counts
 * (reading it says so), and folders whose names are not UTF-8 are looked into by their bytes (the name
 * readdir gives is mangled, and two such names may read alike: each is looked into). Both were left
 * out without a word, where flat files are error items.
 */
function folderTenantFiles(dir: string, name: string): Array<{ file: string; dangling?: boolean }> {
  const raws: Array<Buffer | undefined> = name.includes('\uFFFD') ? readdirSync(dir, { encoding: 'buffer' }).filter((b) => b.toString() === name) : [undefined];
  const out: Array<{ file: string; dangling?: boolean }> = [];
  for (const raw of raws) {
    for (const n of ['client.yaml', 'client.yml']) {
      const at = raw ? Buffer.concat([Buffer.from(dir + path.sep), raw, Buffer.from(path.sep + n)]) : path.join(dir, name, n);
      const link = lstatSync(at, { throwIfNoEntry: false });
      if (!link) continue;
      // Both names, when both are there: two files of one tenant, an error as acme.yaml beside acme.yml is
      // (client.yml was left unread without a word: a probe). Reads take client.yaml first.
      out.push({ file: path.join(dir, name, n), ...(link.isSymbolicLink() && !existsSync(at) && { dangling: true }) });
    }
  }
  return out;
}

/** A directory's entries; one that cannot be listed (no permission) is a usage error naming it, not an internal error. */
function readEntries(dir: string) {
  try {
    return readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM' || code === 'ENOTDIR') {
      throw new UsageError(`tenants directory ${dir} cannot be listed (${code})`, { reason: 'bad-tenants-dir' });
    }
    throw err;
  }
}

/** What a tenant file's link leads to, said after "is a link to X, ": nothing, a loop of links, a directory. */
function linkEnd(file: string): string {
  try {
    return statSync(file).isDirectory() ? 'which is a directory' : 'which is no regular file';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ELOOP' ? 'a loop of links' : code === 'ENOENT' || code === 'ENOTDIR' ? 'which does not exist' : `which cannot be read (${code})`;
  }
}
