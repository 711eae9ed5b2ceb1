import { showControls } from '../redact.js';

/**
 * Text the tool itself built for the terminal (its own colours, a cell it wraps on purpose), with any data
 * inside it already shown by showControls. Output writes it as it is; a plain string given to Output is
 * data, and every control character in it (ESC, a line feed, ...) is shown as `\xNN`. So only the tool's
 * own styling reaches the terminal, and a colour a caller forgot to mark shows up as text, never as data
 * obeyed.
 */
export class Styled {
  constructor(readonly text: string) {}

  toString(): string {
    return this.text;
  }
}

/** Marks text the tool wrote itself (a colour around a constant word): no data inside. */
export const own = (text: string): Styled => new Styled(text);

/**
 * A line of the tool's with data in it: the interpolated strings are data (shown by showControls), the
 * Styled ones (the tool's colours) are kept.
 * `styled\`${business} ${feature}: ${own(c.green('granted'))}\``
 */
export function styled(strings: TemplateStringsArray, ...values: Array<Styled | string | number>): Styled {
  let text = strings[0];
  values.forEach((v, i) => {
    text += (v instanceof Styled ? v.text : showControls(String(v))) + strings[i + 1];
  });
  return new Styled(text);
}

/** A data value for the view: Styled as it is, anything else shown by showControls. */
export const shown = (value: Styled | string | number | boolean | null | undefined): string =>
  value instanceof Styled ? value.text : value === null || value === undefined ? '' : showControls(String(value));
