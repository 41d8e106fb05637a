/**
 * Which addresses a webhook may not reach (unless the operator allows
 * private targets): decided on the parsed address, never on its spelling.
 * Every IPv6 form that carries an IPv4 address (mapped `::ffff:a.b.c.d`,
 * also written `::ffff:7f00:1`; compatible `::a.b.c.d`; NAT64 `64:ff9b::/96`;
 * 6to4 `2002::/16`) is judged by the IPv4 address inside it. IPv4 in
 * decimal, octal or hex forms never gets here: the URL parser and the
 * resolver turn them into dotted quads first, and anything `isIP` does not
 * accept is refused.
 */
import { BlockList, isIP } from 'node:net';

const v4 = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8], // this network
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, cloud metadata
  ['172.16.0.0', 12],
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.88.99.0', 24], // 6to4 relay anycast
  ['192.168.0.0', 16],
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 3], // multicast and reserved, through 255.255.255.255
] as const) {
  v4.addSubnet(net, bits, 'ipv4');
}

const v6 = new BlockList();
for (const [net, bits] of [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['64:ff9b:1::', 48], // local-use NAT64
  ['100::', 64], // discard
  ['2001::', 32], // Teredo: the IPv4 inside is obfuscated
  ['2001:db8::', 32], // documentation
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
] as const) {
  v6.addSubnet(net, bits, 'ipv6');
}

/** The 16 bytes of an IPv6 address `isIP` accepted (may end in a dotted quad). */
function ipv6Bytes(ip: string): number[] {
  let s = ip.toLowerCase().replace(/%.*$/, '');
  const quad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (quad) {
    const [a, b, c, d] = quad.slice(1).map(Number) as [number, number, number, number];
    s = `${s.slice(0, quad.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = s.includes('::') ? s.split('::') : [s, undefined];
  const hs = head ? head.split(':') : [];
  const ts = tail ? tail.split(':') : [];
  const groups =
    tail === undefined ? hs : [...hs, ...Array<string>(8 - hs.length - ts.length).fill('0'), ...ts];
  return groups.flatMap((g) => {
    const n = parseInt(g, 16);
    return [n >> 8, n & 0xff];
  });
}

const quadOf = (b: number[], at: number): string => b.slice(at, at + 4).join('.');

/** True for addresses a webhook must not reach unless allowed. Unparseable: true. */
export function isPrivateAddress(ip: string): boolean {
  const kind = isIP(ip);
  if (kind === 4) return v4.check(ip, 'ipv4');
  if (kind !== 6) return true;
  const b = ipv6Bytes(ip);
  if (b.length !== 16) return true;
  const zero = (from: number, to: number) => b.slice(from, to).every((x) => x === 0);
  // IPv4-mapped (::ffff:0:0/96) and IPv4-compatible (::/96).
  if (zero(0, 10) && b[10] === 0xff && b[11] === 0xff) return v4.check(quadOf(b, 12), 'ipv4');
  if (zero(0, 12)) return true;
  // NAT64 well-known prefix 64:ff9b::/96.
  if (b[0] === 0 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && zero(4, 12)) {
    return v4.check(quadOf(b, 12), 'ipv4');
  }
  // 6to4: 2002:AABB:CCDD::/48 carries AA.BB.CC.DD.
  if (b[0] === 0x20 && b[1] === 0x02) return v4.check(quadOf(b, 2), 'ipv4');
  return v6.check(ip.replace(/%.*$/, ''), 'ipv6');
}
