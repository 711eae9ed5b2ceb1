/**
 * How long a failed registry open or read answers for itself before the next
 * call tries again: within one command no second timeout is waited for, and a
 * long-lived program (the library inside a service) is not left on its
 * fallback for the rest of its life by one outage.
 */
export const REGISTRY_RETRY_MS = 5000;
