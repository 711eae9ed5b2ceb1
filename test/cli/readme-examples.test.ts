import { describe, expect, it } from 'vitest';
import { EXAMPLES, normalise, readmeBlocks, record } from '../../scripts/readme-examples.mjs';

/**
 * The README's examples are recorded from real runs (`node scripts/readme-examples.mjs --write`);
 * this records them again and checks each one still matches what the README shows.
 */
describe('README examples', () => {
  it('every example in README.md is what the command prints today', async () => {
    const outputs = await record();
    const blocks = readmeBlocks();
    for (const ex of EXAMPLES) {
      expect(blocks.has(ex.id), `README.md has no block <!-- example:${ex.id} -->`).toBe(true);
      const why = `example ${ex.id} (re-render with: node scripts/readme-examples.mjs --write); this run: ${outputs.get(`${ex.id}:why`)}\n${outputs.get(ex.id)}`;
      expect(normalise(blocks.get(ex.id)!), why).toBe(normalise(outputs.get(ex.id)!));
    }
  }, 120_000);
});
