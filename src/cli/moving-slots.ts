import { plural } from './charts.js';
import type { Output } from './output.js';

/** Warns (stderr, every format) of a count or profile taken while Cluster slots moved between masters (a resharding). */
export function warnMovingSlots(out: Pick<Output, 'warn'>, moving: readonly number[] | undefined, doing: string, advice = 'run again once it is done'): void {
  if (!moving?.length) return;
  out.warn(`warning: ${plural(moving.length, 'slot')} moved between Cluster masters while ${doing} (a resharding): keys moving with them may be counted twice or not at all; ${advice}`);
}
