/** TENANTCTL_DEBUG turns debugging on, unless it is empty or says no (`0`, `false`, `no`, `off`). */
export function debugFromEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env.TENANTCTL_DEBUG?.trim().toLowerCase();
  return !!v && !['0', 'false', 'no', 'off'].includes(v);
}
