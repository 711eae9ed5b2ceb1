/** Types of scripts/readme-examples.mjs (the README's recorded examples), for the test that checks them. */
export declare const EXAMPLES: Array<{ id: string; args: string[]; show: string; env?: Record<string, string>; seed?: string[]; exit?: boolean }>;
/** Each example's output by id, and by `<id>:why` its exit code and stderr. */
export declare function record(): Promise<Map<string, string>>;
export declare function readmeBlocks(text?: string): Map<string, string>;
export declare function normalise(text: string): string;
