import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Longest test files first, so that the two workers finish together: a slow
 * file started last runs alone at the end. Vitest orders by the durations of
 * its previous run, which a fresh clone (CI) does not have: it then ordered by
 * file size, and the 13 s README-examples file (small) ran last, alone. The
 * durations come from a full run (test/file-durations.json, written by
 * scripts/test-durations.mjs from a JSON report); this machine's own last run
 * wins where there is one, and a file in neither goes by its size, after them.
 */
export default class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const root = this.ctx.config.root;
    const listed = readListed(path.join(root, 'test', 'file-durations.json'));
    const weight = (spec: TestSpecification): [number, number] => {
      const rel = path.relative(root, spec.moduleId).split(path.sep).join('/');
      const cached = this.ctx.cache.getFileTestResults(`${spec.project.name}:${rel}`)?.duration;
      const ms = cached ?? listed[rel];
      return ms === undefined ? [0, sizeOf(spec.moduleId)] : [1, ms];
    };
    const weights = new Map(files.map((f) => [f, weight(f)]));
    return [...files].sort((a, b) => {
      const [ka, wa] = weights.get(a)!;
      const [kb, wb] = weights.get(b)!;
      return kb - ka || wb - wa;
    });
  }
}

function readListed(file: string): Record<string, number> {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, number>;
  } catch {
    return {};
  }
}

function sizeOf(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}
