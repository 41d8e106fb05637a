/**
 * Webhook targets are judged on the parsed address, in every spelling a URL
 * or a resolver can produce: IPv4-mapped/compatible IPv6 (dotted or hex),
 * NAT64, 6to4, decimal/octal/hex IPv4 (which the URL parser turns into
 * dotted quads), and the private, loopback, link-local and reserved ranges.
 */
import { describe, expect, it } from 'vitest';
import { isPrivateAddress } from '../../src/mail/index.js';

/** The host a URL connects to, as the webhook deliverer sees it. */
const hostOf = (url: string) => new URL(url).hostname.replace(/^\[|\]$/g, '');

describe('webhook address filter', () => {
  it.each([
    ['https://127.0.0.1/', true],
    ['https://2130706433/', true], // decimal
    ['https://0177.0.0.1/', true], // octal
    ['https://0x7f.1/', true], // hex, short form
    ['https://127.1/', true],
    ['https://[::ffff:127.0.0.1]/', true], // becomes [::ffff:7f00:1]
    ['https://[::ffff:7f00:1]/', true],
    ['https://[0:0:0:0:0:ffff:7f00:1]/', true],
    ['https://[::ffff:a9fe:a9fe]/', true], // 169.254.169.254
    ['https://[::127.0.0.1]/', true], // IPv4-compatible
    ['https://[64:ff9b::7f00:1]/', true], // NAT64 of 127.0.0.1
    ['https://[64:ff9b::10.0.0.1]/', true],
    ['https://[2002:7f00:1::]/', true], // 6to4 of 127.0.0.1
    ['https://[2002:c0a8:101::1]/', true], // 6to4 of 192.168.1.1
    ['https://[::1]/', true],
    ['https://[::]/', true],
    ['https://[fe80::1]/', true],
    ['https://[fd12:3456::1]/', true],
    ['https://[ff02::1]/', true],
    ['https://[2001:db8::1]/', true],
    ['https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/', true], // Teredo
    ['https://10.1.2.3/', true],
    ['https://172.16.0.1/', true],
    ['https://192.168.0.1/', true],
    ['https://100.64.0.1/', true],
    ['https://0.0.0.0/', true],
    ['https://255.255.255.255/', true],
    ['https://224.0.0.1/', true],
    ['https://8.8.8.8/', false],
    ['https://172.32.0.1/', false],
    ['https://[::ffff:8.8.8.8]/', false],
    ['https://[::ffff:808:808]/', false],
    ['https://[64:ff9b::808:808]/', false],
    ['https://[2002:808:808::1]/', false],
    ['https://[2606:4700::1111]/', false],
  ])('%s private: %s', (url, expected) => {
    expect(isPrivateAddress(hostOf(url))).toBe(expected);
  });

  it('refuses what is not an address', () => {
    expect(isPrivateAddress('example.com')).toBe(true);
    expect(isPrivateAddress('')).toBe(true);
  });
});
