// Writes test/file-durations.json (milliseconds per test file, for test/sequencer.ts) from a
// vitest JSON report: `npx vitest run --reporter=json --outputFile=r.json && node scripts/test-durations.mjs r.json`.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const report = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const out = {};
for (const t of [...report.testResults].sort((a, b) => b.endTime - b.startTime - (a.endTime - a.startTime))) {
  // Named from the project's test/ folder, wherever the report's run was.
  const name = t.name.split(path.sep).join('/');
  out[name.slice(name.lastIndexOf('/test/') + 1)] = Math.round(t.endTime - t.startTime);
}
writeFileSync(path.join(process.cwd(), 'test', 'file-durations.json'), JSON.stringify(out, null, 1) + '\n');
