import { existsSync, lstatSync, statSync } from 'node:fs';
import { UsageError } from '../errors.js';
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
    // lstat: a dangling link named like a config file still marks the project (and fails to read, said so),
    // rather than being passed over for a parent's config.
    const configFiles = CONFIG_FILE_NAMES.map((n) => path.join(dir, n)).filter(present);
    if (configFiles.length > 1) {
      throw new UsageError(`${configFiles.map((f) => path.basename(f)).join(' and ')} both exist in ${dir}: keep one (tenantctl would read only one of them)`);
    }
    const configFile = configFiles[0];
    const stateDir = path.join(dir, STATE_DIR_NAME);
    if (configFile || (existsSync(stateDir) && statSync(stateDir).isDirectory())) return { dir, found: true, configFile };
    const parent = path.dirname(dir);
    if (parent === dir) return { dir: path.resolve(cwd), found: false };
    dir = parent;
  }
}

function present(file: string): boolean {
  try {
    lstatSync(file);
    return true;
  } catch {
    return false;
  }
}
