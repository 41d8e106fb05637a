import { describe, expect, it } from 'vitest';
import { beadPaths, claimOrder, globsOverlap, holdText, holdsOf } from './paths.js';

describe('globsOverlap', () => {
  it.each([
    ['src/a.js', 'src/a.js', true],
    ['src/a.js', 'src/b.js', false],
    ['src', 'src/a.js', true], // a directory covers what is under it
    ['src/a.js', 'src/*.js', true],
    ['src/lib/a.js', 'src/*.js', false], // * stays within one directory
    ['src/lib/a.js', 'src/**', true],
    ['src/lib/a.js', 'src/**/a.js', true],
    ['docs/x.md', 'src/**', false],
    ['src/m0?.js', 'src/m07.js', true],
    ['src/m1?.js', 'src/m07.js', false],
    ['src/*.js', 'src/lib/**', true], // two globs: by their literal prefixes (conservative)
    ['src/*.js', 'docs/*', false],
    ['a.b', 'aXb', false], // dots are literal
  ])('%s ~ %s: %s', (a, b, want) => {
    expect(globsOverlap(a, b)).toBe(want);
    expect(globsOverlap(b, a)).toBe(want);
  });
});

describe('beadPaths', () => {
  it('declared and touched, comma or newline separated, trimmed, without ./ and duplicates', () => {
    expect(
      beadPaths({ 'gc.paths': ' src/a.js, ./src/b.js\nsrc/a.js ', 'gc.touched': 'test/a.test.js' }),
    ).toEqual(['src/a.js', 'src/b.js', 'test/a.test.js']);
    expect(beadPaths({})).toEqual([]);
  });
});

describe('claimOrder', () => {
  const b = (id: string, ...paths: string[]) => ({ id, paths });

  it('beads that overlap nothing in flight go first, held ones after, in ready order', () => {
    const ready = [b('r1', 'src/index.js'), b('r2'), b('r3', 'src/m*.js'), b('r4', 'docs/a.md')];
    const flight = [b('f1', 'src/index.js'), b('f2', 'src/m07.js')];
    const { order, held } = claimOrder(ready, flight);
    expect(order.map((x) => x.id)).toEqual(['r2', 'r4', 'r1', 'r3']);
    expect(held.get('r1')).toEqual([{ with: 'f1', paths: ['src/index.js'] }]);
    expect(held.get('r3')).toEqual([{ with: 'f2', paths: ['src/m*.js ~ src/m07.js'] }]);
    expect(holdText(held.get('r1')!)).toBe('held back: overlaps f1 (src/index.js)');
  });

  it('nothing else ready: held work still goes', () => {
    const { order } = claimOrder([b('r1', 'x')], [b('f1', 'x')]);
    expect(order.map((x) => x.id)).toEqual(['r1']);
  });

  it('a bead without paths is never held; a bead does not hold itself', () => {
    expect(holdsOf(b('r1'), [b('f1', '**')])).toEqual([]);
    expect(holdsOf(b('r1', 'x'), [b('r1', 'x')])).toEqual([]);
  });
});
