import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { TenantFileError, UsageError } from '../errors.js';
import { isValidId } from '../keys/ids.js';
import { lineLocator, readYamlFile } from '../yaml/yaml-file.js';
import { stripSecrets } from './secrets.js';
import { isMap } from './plain-object.js';

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

  constructor(
    readonly dir: string,
    readonly registryOnlyPrefix = 'tn_',
    /** The directory was named explicitly (flag, env, config file): it must exist. */
    readonly mustExist = false,
  ) {}

  /** A directory named explicitly that does not exist is a usage error (a typo must not read as "no tenants"). */
  private checkDir(): boolean {
    if (existsSync(this.dir)) return true;
    if (this.mustExist) throw new UsageError(`tenants directory ${this.dir} does not exist`, { reason: 'bad-tenants-dir' });
    return false;
  }

  /** True when `id` may live in YAML at all. */
  allows(id: string): boolean {
    return !(this.registryOnlyPrefix && id.startsWith(this.registryOnlyPrefix));
  }

  /** The file of a tenant, or undefined when there is none. */
  fileOf(id: string): string | undefined {
    if (!this.checkDir() || !this.allows(id) || !isValidId(id) || id.startsWith('.')) return undefined;
    for (const candidate of [
      path.join(this.dir, `${id}.yaml`),
      path.join(this.dir, `${id}.yml`),
      path.join(this.dir, id, 'client.yaml'),
      path.join(this.dir, id, 'client.yml'),
    ]) {
      if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
    }
    return undefined;
  }

  /** Every tenant id with a file, sorted; files that are not tenants (tiers.yaml, bad names) are left out. */
  listIds(): string[] {
    return this.candidates().flatMap((c) => (c.id && isValidId(c.id) && !c.id.startsWith('.') && this.allows(c.id) && !RESERVED_FILES.has(c.id) ? [c.id] : [])).sort();
  }

  /** Files laid out as tenant files whose names are not valid ids (`bad id!.yaml`): reported, never silently skipped. */
  invalidFiles(): string[] {
    return this.candidates().flatMap((c) => (c.id && (!isValidId(c.id) || c.id.startsWith('.')) ? [c.file] : [])).sort();
  }

  private candidates(): Array<{ id: string | undefined; file: string }> {
    if (!this.checkDir()) return [];
    const out: Array<{ id: string | undefined; file: string }> = [];
    for (const entry of readdirSync(this.dir, { withFileTypes: true })) {
      if (entry.isFile()) {
        const m = /^(.+)\.ya?ml$/.exec(entry.name);
        if (m) out.push({ id: m[1], file: path.join(this.dir, entry.name) });
      } else if (entry.isDirectory()) {
        const file = ['client.yaml', 'client.yml'].map((n) => path.join(this.dir, entry.name, n)).find((f) => existsSync(f));
        if (file) out.push({ id: entry.name, file });
      }
    }
    return out;
  }

  /** Loads and validates one tenant; undefined when it has no file. Throws TenantFileError when malformed. */
  load(id: string): TenantDocument | undefined {
    const file = this.fileOf(id);
    if (!file) return undefined;
    const st = statSync(file);
    const stamp = `${st.mtimeMs}:${st.size}`;
    let entry = this.parsed.get(file);
    if (entry?.stamp !== stamp) {
      let result: TenantDocument | TenantFileError;
      try {
        result = this.parse(id, file);
      } catch (err) {
        if (!(err instanceof TenantFileError)) throw err;
        result = err;
      }
      entry = { stamp, result };
      this.parsed.set(file, entry);
    }
    if (entry.result instanceof TenantFileError) throw entry.result;
    // Callers may change what they get: hand out a copy.
    return { ...entry.result, config: structuredClone(entry.result.config), warnings: [...entry.result.warnings] };
  }

  private parse(id: string, file: string): TenantDocument {
    const { text, doc } = readYamlFile(file);
    const lineOf = lineLocator(text);
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
    const warnings = removed.map((s) => {
      const where = `${path.relative(process.cwd(), file) || file}:${lineOf(s.path) ?? '?'}`;
      return s.kind === 'literal-removed'
        ? `${where}: literal secret ${s.path.join('.')} stripped; put it in an environment variable and write \${VAR}`
        : `${where}: default of secret ${s.path.join('.')} dropped; only the variable is kept`;
    });
    return { id, file, config: stripped, yamlOnly: config.yaml_only === true, warnings, lineOf };
  }
}

/** Files in the tenants directory that hold something other than a tenant. */
const RESERVED_FILES = new Set(['tiers']);
