// Renders bench/results/latest.json (written by `npm run bench`) into README.md
// between `<!-- bench -->` and `<!-- /bench -->`: a table per area with each
// measure, its baseline from the same run, the goal and whether it was met.
//
//   node scripts/bench-readme.mjs          prints the block
//   node scripts/bench-readme.mjs --write  replaces it in README.md
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const README = path.join(ROOT, 'README.md');
const resultsFile = path.join(ROOT, 'bench', 'results', 'latest.json');
let latest;
try {
  latest = JSON.parse(readFileSync(resultsFile, 'utf8'));
} catch (err) {
  // A fresh clone has no results (bench/results/ is not committed): say what to run, not a stack.
  console.error(`bench-readme: cannot read ${path.relative(process.cwd(), resultsFile)} (${err.code ?? err.message}): run \`npm run bench\` first`);
  process.exit(2);
}

const cell = (v) => String(v ?? '').replace(/\|/g, '\\|');
const lines = [];
const m = latest.machine;
lines.push(
  `Run of ${latest.generated_at.slice(0, 10)} at commit \`${latest.git.commit?.slice(0, 7)}\`${latest.git.uncommitted_changes_in_src ? ' (with uncommitted changes)' : ''}: ` +
    `${m.cpus} cores, Node ${m.node}, redis-server ${m.redis_server}, ${latest.wall_seconds} s in all` +
    (m.phase ? `; the machine's phase at the start: \`node -e 0\` ${m.phase.node_e0_ms} ms, a loopback PING ${m.phase.loopback_ping_us} µs (medians; see "Reading them")` : '') +
    `${latest.machine_busy ? '; the machine was busy (load above the core count) during part of it' : ''}.`,
  '',
);
for (const a of latest.areas) {
  lines.push(`**${a.area}**: ${a.title ?? ''} (goals met ${a.goals.met}, not met ${a.goals.not_met})`, '');
  lines.push('| measure | value | baseline | ratio | goal | met |', '|---|---|---|---|---|---|');
  for (const r of a.rows ?? []) {
    const met = r.met === undefined ? '' : r.met ? 'yes' : '**no**';
    lines.push(`| ${cell(r.measure)} | ${cell(r.value)} | ${cell(r.baseline ? `${r.baseline} ${r.baselineValue ?? ''}` : '')} | ${cell(r.ratio)} | ${cell(r.goal)} | ${met} |`);
  }
  for (const n of a.notes ?? []) lines.push('', `- ${n}`);
  lines.push('');
}
const block = lines.join('\n').trimEnd();
if (process.argv.includes('--write')) {
  const text = readFileSync(README, 'utf8');
  const re = /<!-- bench -->[\s\S]*?<!-- \/bench -->/;
  if (!re.test(text)) throw new Error('README.md has no <!-- bench --> block');
  writeFileSync(README, text.replace(re, () => `<!-- bench -->\n${block}\n<!-- /bench -->`));
} else {
  console.log(block);
}
