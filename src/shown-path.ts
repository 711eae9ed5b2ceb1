import path from 'node:path';

/**
 * A file's path as messages show it: relative to the working directory when
 * the file is below it (`tenants/acme.yaml`, as compilers print), else as
 * given (absolute). One rule for errors and warnings, so one run never names
 * files two ways.
 */
export function shownPath(file: string, cwd = process.cwd()): string {
  const rel = path.relative(cwd, file);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}
