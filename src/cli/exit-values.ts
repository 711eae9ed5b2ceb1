/** DESIGN.md's exit codes (apart from exit-codes.ts, which loads commander: the launcher needs them too). */
export const EXIT = { OK: 0, NEGATIVE: 1, USAGE: 2, BACKEND: 3, PARTIAL: 4, INTERNAL: 70, OUTPUT: 74, SIGINT: 130, SIGTERM: 143 } as const;
