import { plural } from './charts.js';

/** The warning of a count or profile taken while Cluster slots moved between masters (a resharding). */
export function movingSlotsWarning(moving: readonly number[] | undefined, doing: string, advice = 'run again once it is done'): string | undefined {
  if (!moving?.length) return undefined;
  return `warning: ${plural(moving.length, 'slot')} moved between Cluster masters while ${doing} (a resharding): keys moving with them may be counted twice or not at all; ${advice}`;
}
