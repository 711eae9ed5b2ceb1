// The README's command examples, recorded from real runs.
//
//   node scripts/readme-examples.mjs --write    re-renders every example block in README.md
//
// A block is `<!-- example:ID -->` ... `<!-- /example -->` in README.md; the test
// test/cli/readme-examples.test.ts records them again and checks each still
// matches (after normalising what changes run to run: ports, timings, sizes, paths).
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin', 'tenantctl.js');
const README = path.join(ROOT, 'README.md');

/**
 * The examples, in the order they run (each sees what the earlier ones did).
 * `show` is the command as a person types it; `args` what is run (a table
 * forced with -o table where a terminal would show one); `seed` arranges keys first.
 */
export const EXAMPLES = [
  { id: 'migrate-dry-run', args: ['migrate-yaml', '--dry-run', '-o', 'table'], show: 'tenantctl migrate-yaml --dry-run' },
  { id: 'migrate', args: ['migrate-yaml', '-o', 'table'], show: 'tenantctl migrate-yaml' },
  { id: 'get-config', args: ['get-config', 'initech'], show: 'INITECH_SMTP_PASSWORD=s3cret tenantctl get-config initech', env: { INITECH_SMTP_PASSWORD: 's3cret' } },
  { id: 'list-tenants', args: ['list-tenants', '-o', 'table'], show: 'tenantctl list-tenants' },
  {
    id: 'invalidate-dry-run',
    seed: ['tenant_config:acme', 'dashboard_kpis:acme:days:30', 'dashboard_kpis:acme2:days:30', 'permissions:acme', 'sessions:acme'],
    args: ['invalidate', 'acme', '--dry-run', '-o', 'table'],
    show: 'tenantctl invalidate acme --dry-run',
  },
  { id: 'invalidate', args: ['invalidate', 'acme', '-o', 'table'], show: 'tenantctl invalidate acme' },
  {
    id: 'invalidate-all-dry-run',
    seed: ['tenant_config:globex', 'permissions:globex', 'products:globex:page:1', 'products:initech:page:1'],
    args: ['invalidate-all', '--dry-run', '-o', 'table'],
    show: 'tenantctl invalidate-all --dry-run',
  },
  { id: 'cache-info', args: ['cache-info', '-o', 'table'], show: 'tenantctl cache-info' },
  { id: 'cache-info-by-tenant', args: ['cache-info', '--by', 'tenant', '-o', 'table'], show: 'tenantctl cache-info --by tenant' },
  { id: 'test-redis', args: ['test-redis', '-o', 'table'], show: 'tenantctl test-redis' },
  { id: 'check-permission', args: ['check-permission', 'globex', 'has_ai', '--explain', '-o', 'table'], show: 'tenantctl check-permission globex has_ai --explain; echo "exit $?"', exit: true },
  { id: 'get-permissions', args: ['get-permissions', 'initech', '--json'], show: 'tenantctl get-permissions initech --json' },
  { id: 'override', args: ['override', 'globex', 'has_ai', '--grant', '-o', 'table'], show: 'tenantctl override globex has_ai --grant' },
  { id: 'plain', args: ['list-tenants'], show: 'tenantctl list-tenants | cat        # piped: tab-separated, no box' },
  { id: 'config', args: ['config', '-o', 'table'], show: 'tenantctl config' },
  { id: 'doctor', args: ['doctor', '-o', 'table'], show: 'tenantctl doctor; echo "exit $?"', exit: true },
];

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function startRedis() {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-readme-redis-'));
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: ['ignore', 'pipe', 'ignore'] });
  await new Promise((resolve, reject) => {
    let log = '';
    proc.stdout.on('data', (d) => {
      log += d;
      if (log.includes('Ready to accept connections')) resolve();
    });
    proc.on('exit', () => reject(new Error(`redis-server exited: ${log}`)));
  });
  return { port, url: `redis://127.0.0.1:${port}`, stop: () => (proc.kill('SIGKILL'), rmSync(dir, { recursive: true, force: true })) };
}

function redisCommand(port, ...args) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.on('data', () => sock.end());
    sock.on('end', resolve);
    sock.on('error', reject);
    sock.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
  });
}

/** Runs every example in a fresh project (the repository's tenants/, an own redis-server) and returns the outputs. */
export async function record() {
  // A fixed place, so the paths in the recorded output are the same from run to run.
  const project = path.join(os.tmpdir(), 'tenantctl-example');
  rmSync(project, { recursive: true, force: true });
  mkdirSync(project);
  cpSync(path.join(ROOT, 'tenants'), path.join(project, 'tenants'), { recursive: true });
  const redis = await startRedis();
  const out = new Map();
  try {
    for (const ex of EXAMPLES) {
      for (const key of ex.seed ?? []) await redisCommand(redis.port, 'SET', key, '{}', 'EX', '300');
      const r = spawnSync(process.execPath, [BIN, ...ex.args], {
        cwd: project,
        encoding: 'utf8',
        env: { PATH: process.env.PATH, HOME: project, NO_COLOR: '1', REDIS_URL: redis.url, ...(ex.env ?? {}) },
      });
      const text = `$ ${ex.show}\n${r.stdout}${ex.exit ? `exit ${r.status}\n` : ''}`;
      out.set(ex.id, text.trimEnd());
      // What else the run said (its exit code and stderr), for a test's message when an example differs.
      out.set(`${ex.id}:why`, `exit ${r.status}${r.signal ? ` (${r.signal})` : ''}; stderr: ${r.stderr.trim() || '(none)'}`);
    }
  } finally {
    redis.stop();
    rmSync(project, { recursive: true, force: true });
  }
  return out;
}

const BLOCK = /<!-- example:([a-z0-9-]+) -->\n```\n([\s\S]*?)\n?```\n<!-- \/example -->/g;

/** The example blocks in the README, by id. */
export function readmeBlocks(text = readFileSync(README, 'utf8')) {
  return new Map([...text.matchAll(BLOCK)].map((m) => [m[1], m[2]]));
}

/**
 * What may change from run to run, made equal: ports, timings, byte sizes,
 * dates, percentages of memory, and the widths of table borders and padding.
 */
export function normalise(text) {
  return text
    .replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:PORT')
    .replace(/\d+(\.\d+)? ms\b/g, 'N ms')
    .replace(/\b\d+(\.\d+)? (B|KB|MB|GB)\b/g, 'SIZE')
    .replace(/\d{4}-\d{2}-\d{2}T[\d:.]+Z/g, 'DATE')
    .replace(/\(hit rate [\d.]+%\)/g, '(hit rate N%)')
    .replace(/\b\d+ hits, \d+ misses/g, 'N hits, N misses')
    .replace(/\b\d+ in all\b/g, 'N in all')
    .replace(/\d+%/g, 'N%')
    .replace(/Redis \d+\.\d+\.\d+/g, 'Redis X')
    .replace(/│ (ok|FAILED)(\s+)│ [\d.]+(\s+)│/g, '│ $1 │ N │')
    .replace(/[─━]+/g, '─')
    .replace(/[ \t]+/g, ' ')
    .replace(/ +\n/g, '\n');
}

if (process.argv.includes('--write')) {
  const outputs = await record();
  let text = readFileSync(README, 'utf8');
  const missing = EXAMPLES.filter((ex) => !readmeBlocks(text).has(ex.id)).map((ex) => ex.id);
  text = text.replace(BLOCK, (all, id) => (outputs.has(id) ? `<!-- example:${id} -->\n\`\`\`\n${outputs.get(id)}\n\`\`\`\n<!-- /example -->` : all));
  writeFileSync(README, text);
  console.log(`re-rendered ${EXAMPLES.length - missing.length} example(s)${missing.length ? `; no block in README.md for: ${missing.join(', ')}` : ''}`);
}
