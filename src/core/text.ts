/**
 * Text from agents (titles, mail, event messages) shown to a human: control
 * characters are made visible instead of reaching the terminal, where an
 * ESC or OSC sequence (or a lone C1 CSI, U+009B) could move the cursor,
 * retitle the window, rewrite earlier lines or plant a clickable link.
 * Tab and newline pass (multi-line bodies stay multi-line). JSON output
 * never goes through this: it stays exact.
 */

// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

/** `text` with every control character but tab and newline shown as `\xNN`. */
export function printable(text: string): string {
  return text.replace(CONTROL, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
