import type { ChangeResult } from '../../services/subscription-service.js';
import { PartialFailureError } from '../../errors.js';
import type { CommandResult } from '../action.js';

/** How set-subscription, override and reactivate report: the new subscription, and exit 4 if the cache could not be invalidated. */
export function subscriptionChangeResult(r: ChangeResult): CommandResult {
  const s = r.subscription;
  return {
    data: r,
    counts: { written: 1, invalidated: r.cacheInvalidated === true ? 1 : 0 },
    failure: r.cacheInvalidated === false
      ? new PartialFailureError(`registry updated, but permissions:${r.business} was not invalidated (stale for up to its TTL; the next write command or \`tenantctl invalidate --pending\` does it)${r.cacheError ? `: ${r.cacheError}` : ''}`)
      : undefined,
    render: (out) => {
      out.table(['business', 'tier', 'status', 'demo_expires_at', 'overrides', 'cache'], [[
        // Whole seconds shown as everywhere else (`...00Z`); a stored fraction is kept.
        r.business, s.tier, s.status, s.demo_expires_at?.replace(/\.000Z$/, 'Z') ?? '-',
        Object.entries(s.overrides).map(([k, v]) => `${k}: ${v}`).join(', ') || '-',
        r.cacheInvalidated === true ? 'invalidated' : r.cacheInvalidated === false ? 'NOT invalidated' : 'no Redis',
      ]]);
    },
  };
}
