/**
 * The first number in a JSON text written as a float whose value is whole
 * (`1.0`, `2.50e1`): Python's json reader (the services') keeps it a float and
 * writes it back with its `.0`, where JSON.parse here makes it the integer 1,
 * written `1`. A jsonb column keeps a number's scale (`1.0` stays `1.0`), so a
 * registry row written by the services can hold one. Strings are skipped.
 */
export interface WholeFloat {
  /** Key path of the number, outermost first (array positions as digits). */
  path: string[];
  /** The number as written in the text. */
  written: string;
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

/**
 * Where the JSON string opening at `i` ends (past its closing quote), or -1 when it does not. A loop, not a
 * RegExp: a pattern over a string's characters recursed once per character, and one of ten million
 * overflowed the stack (a registry row holding such a string stopped every verify, exit 70).
 */
function stringEnd(text: string, i: number): number {
  for (let j = i + 1; ; ) {
    const quote = text.indexOf('"', j);
    if (quote < 0) return -1;
    // Escaped when an odd number of backslashes precede it.
    let slashes = 0;
    while (text.charCodeAt(quote - 1 - slashes) === 92) slashes++;
    if (slashes % 2 === 0) return quote + 1;
    j = quote + 1;
  }
}

export function firstWholeFloat(text: string): WholeFloat | undefined {
  // Most texts have neither a fraction nor an exponent followed by a digit: nothing to walk.
  if (!/[.eE][-+]?\d/.test(text)) return undefined;
  return numbersOfText(text, (written) => /[.eE]/.test(written) && Number.isInteger(Number(written)), true)[0];
}

/**
 * The integers of a JSON text that a JavaScript number cannot hold exactly (past 2^53), with their key
 * paths and digits as written: JSON.parse rounds them, where the services' JSON reader (Python's) keeps
 * every digit. `floats`: numbers written as floats whose value is such an integer too (`1.2345678901234568e+16`,
 * a float to Python, never equal to an integer it writes). Strings are skipped. Empty for a text that is not JSON.
 */
export function bigIntegersOfText(text: string, floats = false): WholeFloat[] {
  if (!(floats ? /\d{16}|[eE]\+?\d\d/ : /\d{16}/).test(text)) return [];
  return numbersOfText(text, (written) => (floats || !/[.eE]/.test(written)) && isUnsafeInteger(Number(written)), false);
}

const isUnsafeInteger = (n: number) => Number.isInteger(n) && !Number.isSafeInteger(n);

/** The numbers of a JSON text that `pick` takes, with their key paths (only the first when `first`). */
function numbersOfText(text: string, pick: (written: string) => boolean, first: boolean): WholeFloat[] {
  const found: WholeFloat[] = [];
  // One container per level: the key being read (objects) or the next index (arrays).
  const path: string[] = [];
  const inArray: boolean[] = [];
  const index: number[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; ) {
    const c = text[i];
    if (c === '"') {
      const end = stringEnd(text, i);
      if (end < 0) return []; // not JSON: nothing to say
      if (expectKey) path[path.length - 1] = JSON.parse(text.slice(i, end)) as string;
      i = end;
      continue;
    }
    if (c === '{' || c === '[') {
      inArray.push(c === '[');
      index.push(0);
      path.push(c === '[' ? '0' : '');
      expectKey = c === '{';
    } else if (c === '}' || c === ']') {
      inArray.pop();
      index.pop();
      path.pop();
      expectKey = false;
    } else if (c === ':') expectKey = false;
    else if (c === ',') {
      const top = inArray.length - 1;
      if (inArray[top]) path[top] = String(++index[top]);
      else expectKey = true;
    } else if (c === '-' || (c >= '0' && c <= '9')) {
      NUMBER.lastIndex = i;
      const m = NUMBER.exec(text);
      if (!m) return [];
      const written = m[0];
      if (pick(written)) {
        found.push({ path: [...path], written });
        if (first) return found;
      }
      i += written.length;
      continue;
    }
    i++;
  }
  return found;
}
