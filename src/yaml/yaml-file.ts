import { readFileSync, statSync } from 'node:fs';
import { load, CORE_SCHEMA, YAMLException } from 'js-yaml';
import { TenantFileError } from '../errors.js';

/** Files above this size are refused before parsing. */
export const MAX_TENANT_FILE_BYTES = 1024 * 1024;
/** Alias and depth limits: js-yaml's defaults are unlimited (js-yaml#738, #739). */
export const YAML_LIMITS = { maxAliases: 100, maxDepth: 64 } as const;

export interface ParsedYaml {
  file: string;
  text: string;
  doc: unknown;
}

/**
 * Reads and parses one YAML file safely: size cap, CORE schema (dates stay
 * strings), duplicate keys an error, alias and depth limits. Any failure is a
 * TenantFileError carrying `file:line: reason`.
 */
export function readYamlFile(file: string): ParsedYaml {
  let text: string;
  try {
    const size = statSync(file).size;
    if (size > MAX_TENANT_FILE_BYTES) {
      throw new TenantFileError(file, undefined, `file is ${size} bytes; the limit is ${MAX_TENANT_FILE_BYTES}`);
    }
    text = decodeUtf8(file, readFileSync(file));
  } catch (err) {
    if (err instanceof TenantFileError) throw err;
    throw new TenantFileError(file, undefined, `cannot read: ${(err as Error).message}`);
  }
  try {
    const doc = load(text, { schema: CORE_SCHEMA, filename: file, ...YAML_LIMITS });
    // A YAML alias yields shared references; JSON serialisation would expand them.
    assertSerialisable(doc, file, text);
    return { file, text, doc };
  } catch (err) {
    if (err instanceof TenantFileError) throw err;
    if (err instanceof YAMLException) {
      const line = err.mark ? err.mark.line + 1 : undefined;
      throw new TenantFileError(file, line, err.reason || err.message.split('\n')[0]);
    }
    throw new TenantFileError(file, undefined, (err as Error).message.split('\n')[0]);
  }
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** The file's text, or `file:line: not UTF-8` naming the first line with a bad byte (never silently replaced). */
function decodeUtf8(file: string, bytes: Buffer): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    let line = 1;
    let start = 0;
    for (let i = 0; i <= bytes.length; i++) {
      if (i === bytes.length || bytes[i] === 0x0a) {
        try {
          strictUtf8.decode(bytes.subarray(start, i));
        } catch {
          throw new TenantFileError(file, line, 'not UTF-8 (a byte sequence that is not valid UTF-8)');
        }
        line++;
        start = i + 1;
      }
    }
    throw new TenantFileError(file, undefined, 'not UTF-8');
  }
}

/** Refuses documents whose JSON form would blow up (aliases repeated into a huge tree). */
function assertSerialisable(doc: unknown, file: string, text: string): void {
  let nodes = 0;
  const limit = Math.max(10_000, text.length * 2);
  const walk = (v: unknown): void => {
    if (++nodes > limit) throw new TenantFileError(file, undefined, 'document expands to too many values (alias bomb?)');
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk(doc);
}

/**
 * The 1-based line where a key path is written, found by reading the text in
 * order (block and flow style); undefined when it cannot be told.
 */
export function lineOfPath(text: string, path: string[]): number | undefined {
  const lines = text.split('\n');
  let from = 0;
  let found: number | undefined;
  for (const seg of path) {
    if (/^\d+$/.test(seg)) continue;
    const re = new RegExp(`(^|[\\s{,"'-])${seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}["']?\\s*:`);
    let hit: number | undefined;
    for (let i = from; i < lines.length; i++) {
      if (re.test(lines[i].replace(/#.*$/, ''))) {
        hit = i;
        break;
      }
    }
    if (hit === undefined) return found === undefined ? undefined : found + 1;
    found = hit;
    from = hit;
  }
  return found === undefined ? undefined : found + 1;
}
