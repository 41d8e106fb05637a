/**
 * Key names (as tmux spells them) to the bytes a terminal would send, for
 * providers whose sessions read a pipe instead of a terminal. A name that is
 * not a key is sent as literal text, as tmux does.
 */
const NAMED: Record<string, string> = {
  Enter: '\n',
  Tab: '\t',
  Space: ' ',
  Escape: '\u001b',
  BSpace: '\u007f',
  Up: '\u001b[A',
  Down: '\u001b[B',
  Right: '\u001b[C',
  Left: '\u001b[D',
  Home: '\u001b[H',
  End: '\u001b[F',
};

/** The bytes for one key; `C-c` is an interrupt (a signal, not a byte). */
export function keyBytes(key: string): { interrupt: true } | { bytes: string } {
  if (key === 'C-c') return { interrupt: true };
  const named = NAMED[key];
  if (named !== undefined) return { bytes: named };
  const ctrl = /^C-([a-zA-Z])$/.exec(key);
  if (ctrl) return { bytes: String.fromCharCode(ctrl[1]!.toLowerCase().charCodeAt(0) - 96) };
  return { bytes: key };
}
