import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Tenantctl } from '../../src/tenantctl.js';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { runCli } from '../helpers/setup.js';
import { makeCertificates } from '../helpers/redis-topologies.js';

describe('TLS (rediss://) against a TLS-only redis-server', () => {
  let dir: string;
  let server: RedisServer;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-tls-'));
    makeCertificates(dir);
    server = await startRedis(
      ['--tls-cert-file', path.join(dir, 'server.crt'), '--tls-key-file', path.join(dir, 'server.key'), '--tls-ca-cert-file', path.join(dir, 'ca.crt'), '--tls-auth-clients', 'no', '--requirepass', 'tlspass'],
      { tlsPort: true },
    );
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('test-redis passes over rediss:// with the CA from REDIS_CA_CERT; the password never shows', async () => {
    const r = await runCli(['test-redis', '--json'], { env: { REDIS_URL: `rediss://:tlspass@127.0.0.1:${server.port}`, REDIS_CA_CERT: path.join(dir, 'ca.crt') } });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).server).toBe(`rediss://:****@127.0.0.1:${server.port}`);
    expect(r.stdout).not.toContain('tlspass');
  });

  it('a TLS file that cannot be read is a usage error (exit 2, one line), for every command: it was Redis down (test-redis exit 3, cache-info redis_up 0)', async () => {
    const env = { REDIS_URL: `rediss://:tlspass@127.0.0.1:${server.port}`, REDIS_CA_CERT: path.join(dir, 'no-such-ca.crt') };
    for (const args of [['test-redis'], ['cache-info', '--json'], ['get-config', 'acme'], ['invalidate-all', '--yes']]) {
      const r = await runCli(args, { env });
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr.startsWith(`error: cannot read the TLS CA file ${path.join(dir, 'no-such-ca.crt')}: no such file (REDIS_CA_CERT, `), r.stderr).toBe(true);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
    // Before anything is written (after a registry write it said "nothing changed" of a change made: a review).
    const project = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-tls-project-'));
    try {
      mkdirSync(path.join(project, 'tenants'));
      writeFileSync(path.join(project, 'tenants', 'acme.yaml'), 'client:\n  id: acme\n  name: Acme\n');
      const m = await runCli(['migrate-yaml'], { cwd: project, env });
      expect(m.code, m.stderr).toBe(2);
      expect(existsSync(path.join(project, '.tenantctl'))).toBe(false);
      // Commands that never open Redis are not stopped by it (a review: schema and list-tenants were).
      for (const args of [['schema'], ['list-tenants']]) expect((await runCli(args, { cwd: project, env })).code, args[0]).toBe(0);
      // A library's reads are not stopped by it: Redis unreachable, the answer from the fallback, one warning.
      const warnings: string[] = [];
      const t = new Tenantctl({ cwd: project, env, warn: (w) => warnings.push(w) });
      try {
        expect((await t.tenants.get('acme')).source).toBe('yaml');
        expect(warnings.join('\n')).toMatch(/cannot read the TLS CA file .*no such file/);
      } finally {
        await t.close();
      }
      // A FIFO as the file: never read (a library's event loop waited on it for ever: a review).
      const fifo = path.join(project, 'ca.fifo');
      execFileSync('mkfifo', [fifo]);
      const onFifo = new Tenantctl({ cwd: project, env: { ...env, REDIS_CA_CERT: fifo }, warn: () => undefined });
      try {
        expect((await onFifo.tenants.get('acme')).source).toBe('yaml');
      } finally {
        await onFifo.close();
      }
    } finally {
      rmSync(project, { recursive: true, force: true });
    }
  });

  it('an untrusted certificate is refused (exit 3), not silently accepted', async () => {
    const r = await runCli(['test-redis'], { env: { REDIS_URL: `rediss://:tlspass@127.0.0.1:${server.port}`, REDIS_TIMEOUT_MS: '1000' } });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/certificate/i);
  });

  it('the TLS port reached without TLS fails within the timeout instead of hanging (ioredis#1924)', async () => {
    const r = await runCli(['test-redis'], { env: { REDIS_URL: `redis://:tlspass@127.0.0.1:${server.port}`, REDIS_TIMEOUT_MS: '500' } });
    expect(r.code).toBe(3);
    expect(r.ms).toBeLessThan(500 + 2000);
    // Said as what it likely is (it was a bare "write ECONNRESET").
    expect(r.stderr).toMatch(/a TLS-only port\? rediss:\/\/ for TLS/);
  });
});

describe('TLS files beside a plain redis:// server', () => {
  let dir: string;
  let plain: RedisServer;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'tenantctl-tls-plain-'));
    makeCertificates(dir);
    plain = await startRedis();
  });
  afterAll(async () => {
    await plain?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the URL\'s scheme decides: a CA left in the environment does not turn TLS on for redis:// (said once on stderr)', async () => {
    // A profile's REDIS_CA_CERT for production, a local server by --redis-url: before, a TLS handshake with a plain server, exit 3.
    const r = await runCli(['test-redis', '--json', '--redis-url', `redis://127.0.0.1:${plain.port}`], { env: { REDIS_CA_CERT: path.join(dir, 'ca.crt'), REDIS_TIMEOUT_MS: '1000' } });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).ok).toBe(true);
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(/env REDIS_CA_CERT not used: the Redis URL \(--redis-url\) is redis:\/\/, so no TLS/)]);
  });

  it('rediss:// to this plain server: exit 3 within the timeout, and the message says the timeout and the likely cause (it was a bare "connect ETIMEDOUT")', async () => {
    const r = await runCli(['test-redis', '--redis-url', `rediss://127.0.0.1:${plain.port}`], { env: { REDIS_TIMEOUT_MS: '700' } });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/timeout 700 ms\)?; if it is a plain, non-TLS port, it never answers the TLS handshake: redis:\/\/ for it/);
  });
});
