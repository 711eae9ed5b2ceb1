import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';

/**
 * Opens a file for reading only if it is a regular file. Opened non-blocking:
 * a FIFO at the name (`mkfifo tenants/tiers.yaml`) would block a plain open()
 * until a writer came, deaf to SIGINT and SIGTERM. Anything but a regular file
 * is an error with code EFTYPE. The caller closes the descriptor.
 */
export function openRegularFile(file: string): number {
  return openRegularFileSized(file).fd;
}

/** openRegularFile, with the file's size from the same fstat (a reader needs no second one). */
export function openRegularFileSized(file: string): { fd: number; size: number } {
  // O_NONBLOCK where the platform has it (not Windows); it changes nothing for a regular file.
  const fd = openSync(file, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw Object.assign(new Error(`EFTYPE: not a regular file, open '${file}'`), { code: 'EFTYPE', path: file });
    return { fd, size: stat.size };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/** The text of a regular file (see openRegularFile). */
export function readRegularFile(file: string): string {
  const fd = openRegularFile(file);
  try {
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}
