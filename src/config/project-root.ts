import { existsSync, statSync } from 'node:fs';
import path from 'node:path';

/** The names that mark a tenantctl project directory. */
export const CONFIG_FILE_NAMES = ['tenantctl.config.json', 'tenantctl.config.yaml', 'tenantctl.config.yml'] as const;
export const STATE_DIR_NAME = '.tenantctl';

export interface ProjectRoot {
  /** The project directory, or the working directory when none was found. */
  dir: string;
  /** Whether a marker was found (false: `dir` is just the working directory). */
  found: boolean;
  /** The config file in it, if any. */
  configFile?: string;
}

/**
 * Finds the project as git finds its repository: from the working directory
 * up to the first directory holding `tenantctl.config.*` or `.tenantctl/`.
 */
export function findProjectRoot(cwd: string): ProjectRoot {
  let dir = path.resolve(cwd);
  for (;;) {
    const configFile = CONFIG_FILE_NAMES.map((n) => path.join(dir, n)).find((f) => existsSync(f));
    const stateDir = path.join(dir, STATE_DIR_NAME);
    if (configFile || (existsSync(stateDir) && statSync(stateDir).isDirectory())) return { dir, found: true, configFile };
    const parent = path.dirname(dir);
    if (parent === dir) return { dir: path.resolve(cwd), found: false };
    dir = parent;
  }
}
