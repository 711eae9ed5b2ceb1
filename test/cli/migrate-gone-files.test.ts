import { rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, tenantYaml, uniq, workspace, type Workspace } from '../helpers/setup.js';

describe('migrate-yaml after tenant files were removed or renamed', () => {
  let ws: Workspace;
  const [kept, gone] = [uniq('kept'), uniq('gone')];
  beforeAll(async () => {
    ws = workspace({ [kept]: tenantYaml(kept, 'Kept'), [gone]: tenantYaml(gone, 'Gone') });
    expect((await runCli(['migrate-yaml'], { cwd: ws.dir })).code).toBe(0);
    rmSync(path.join(ws.tenantsDir, `${gone}.yaml`));
  });
  afterAll(() => ws.cleanup());

  it('one warning names the live registry tenants whose files are gone (left as they are), exit 0; --json carries them', async () => {
    const r = await runCli(['migrate-yaml'], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`^warning: 1 tenant\\(s\\) migrated earlier have no file here now \\(${gone}\\): left as they are in the registry, still active`, 'm'));
    const json = await runCli(['migrate-yaml', '--dry-run', '--json'], { cwd: ws.dir });
    expect(JSON.parse(json.stdout).migratedWithoutFile).toEqual({ total: 1, some: [gone] });
  });
});
