import type { ContentHashMemo } from '../registry/registry-store.js';
import { readCacheFile, userCacheFile, writeCacheFile } from './parse-cache.js';

/** Bumped if the fingerprint or contentHash ever change: an older file is ignored. */
const FORMAT = 3;

/** Entries kept at most: the ones this run used first, then the most recently saved. */
const MAX_ENTRIES = 200_000;

/**
 * The content hashes of registry rows, by the fingerprint of the row's text
 * (see SqlRegistryStore.getTenantVersions), kept between runs in the user's
 * cache directory. A memo of a pure function: shared by every project and
 * registry, never stale (an edited row has another fingerprint and is hashed
 * anew), and losing it only costs time. It holds hashes, never content.
 */
export class ContentHashCache implements ContentHashMemo {
  private readonly used = new Map<string, string>();
  private dirty = false;

  private constructor(
    private readonly file: string,
    private readonly known: Map<string, string>,
  ) {}

  static open(env: NodeJS.ProcessEnv = process.env): ContentHashCache {
    const file = userCacheFile('content-hashes.json', env);
    const data = readCacheFile(file) as { format?: number; hashes?: Record<string, string> } | undefined;
    return new ContentHashCache(file, new Map(data?.format === FORMAT && data.hashes ? Object.entries(data.hashes) : []));
  }

  get(fingerprint: string): string | undefined {
    const hash = this.used.get(fingerprint) ?? this.known.get(fingerprint);
    if (hash !== undefined) this.used.set(fingerprint, hash);
    return hash;
  }

  set(fingerprint: string, contentHash: string): void {
    this.used.set(fingerprint, contentHash);
    this.dirty = true;
  }

  /** Writes the file when this run hashed something new; what this run used is kept first. */
  save(): void {
    if (!this.dirty) return;
    const hashes: Record<string, string> = {};
    let n = 0;
    for (const source of [this.used, this.known]) {
      for (const [fp, hash] of source) {
        if (n >= MAX_ENTRIES) break;
        if (!(fp in hashes)) {
          hashes[fp] = hash;
          n++;
        }
      }
    }
    writeCacheFile(this.file, { format: FORMAT, hashes });
    this.dirty = false;
  }
}
