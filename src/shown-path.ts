import path from 'node:path';

/**
 * A file's path as messages show it: relative to the working directory when
 * the file is below it (`tenants/acme.yaml`, as compilers print), else as
 * given (absolute). One rule for errors and warnings, so one run never names
 * files two ways.
 */
export function shownPath(file: string, cwd = currentDirectory()): string {
  // No working directory (removed while in use; a library given its own cwd): the path as given.
  if (cwd === undefined || !path.isAbsolute(file)) return file;
  const rel = path.relative(cwd, file);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}

function currentDirectory(): string | undefined {
  try {
    return process.cwd();
  } catch {
    return undefined;
  }
}
