// Runs every benchmark in turn (npm run bench). Each prints its own ratios.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = path.dirname(fileURLToPath(import.meta.url));
let failed = false;
for (const file of readdirSync(dir).filter((f) => f.endsWith('.js') && !['lib.js', 'run-all.js'].includes(f)).sort()) {
  console.log(`\n=== ${file}`);
  const r = spawnSync(process.execPath, [path.join(dir, file)], { stdio: 'inherit' });
  if (r.status !== 0) failed = true;
}
process.exitCode = failed ? 1 : 0;
