/** Types of scripts/readme-examples.mjs (the README's recorded examples), for the test that checks them. */
export declare const EXAMPLES: Array<{ id: string; args: string[]; show: string; env?: Record<string, string>; seed?: string[]; exit?: boolean }>;
export declare function record(): Promise<Map<string, string>>;
export declare function readmeBlocks(text?: string): Map<string, string>;
export declare function normalise(text: string): string;
