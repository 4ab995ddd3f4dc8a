import { parseCidrList } from './cidr-list.parser';
import ipaddr from 'ipaddr.js';
import { checkIpAddress, isPublicAddress } from './ip-address.rule';
import { setDefaultUrlPolicy } from './url-policy.store';

describe('isPublicAddress', () => {
  afterEach(() => setDefaultUrlPolicy({}));

  it.each([
    ['8.8.8.8', true],
    ['1.1.1.1', true],
    ['93.184.216.34', true],
    ['2606:4700:4700::1111', true],
    ['[2001:4860:4860::8888]', true],
    ['::ffff:8.8.8.8', true],
    ['::ffff:808:808', true],
    ['127.0.0.1', false],
    ['10.1.2.3', false],
    ['172.20.0.1', false],
    ['192.168.1.1', false],
    ['100.64.0.1', false],
    ['169.254.169.254', false],
    ['168.63.129.16', false],
    ['0.0.0.0', false],
    ['255.255.255.255', false],
    ['224.0.0.251', false],
    ['::1', false],
    ['::', false],
    ['fe80::1', false],
    ['fe80::1%eth0', false],
    ['fd00:ec2::254', false],
    ['fc00::1', false],
    ['ff02::1', false],
    ['2001:db8::1', false],
    ['::ffff:127.0.0.1', false],
    ['::ffff:7f00:1', false],
    ['::ffff:169.254.169.254', false],
    ['64:ff9b::8.8.8.8', false],
    ['2002:808:808::1', false],
    ['::127.0.0.1', false],
    ['2130706433', false],
    ['0x7f.1', false],
    ['127.1', false],
    ['010.0.0.1', false],
    ['example.com', false],
    ['', false],
    ['not an address', false],
  ])('%s is public: %s', (address, expected) => {
    expect(isPublicAddress(address, [])).toBe(expected);
  });

  describe('with an allow list', () => {
    const allow = parseCidrList('127.0.0.1/32,10.0.0.0/8,fd00::/8');

    it.each([
      ['127.0.0.1', true],
      ['127.0.0.2', false],
      ['10.200.3.4', true],
      ['::ffff:10.1.1.1', true],
      ['::ffff:127.0.0.1', true],
      ['fd12::1', true],
      ['192.168.1.1', false],
      ['169.254.169.254', false],
      ['8.8.8.8', true],
    ])('%s is allowed: %s', (address, expected) => {
      expect(isPublicAddress(address, allow)).toBe(expected);
    });

    it('never opens a metadata address through a broad block, only when named as a single host', () => {
      expect(isPublicAddress('169.254.169.254', parseCidrList('169.254.0.0/16'))).toBe(false);
      expect(isPublicAddress('169.254.169.253', parseCidrList('169.254.0.0/16'))).toBe(true);
      expect(isPublicAddress('169.254.169.254', parseCidrList('169.254.169.254/32'))).toBe(true);
      expect(isPublicAddress('168.63.129.16', parseCidrList('0.0.0.0/0'))).toBe(false);
      expect(isPublicAddress('fd00:ec2::254', parseCidrList('fd00::/8'))).toBe(false);
      expect(isPublicAddress('fd20:ce::254', parseCidrList('fc00::/7'))).toBe(false);
      expect(isPublicAddress('fd00:c1::a9fe:a9fe', parseCidrList('fd00::/8'))).toBe(false);
      expect(isPublicAddress('169.254.0.23', parseCidrList('169.254.0.0/16'))).toBe(false);
    });

    it('opens through an IPv6 entry only the IPv4 addresses it carries that are public or allowed themselves', () => {
      // An IPv6-only network reaches IPv4 receivers through its NAT64 prefix: allowing the prefix opens those,
      // not the private networks behind the gateway.
      const nat64 = parseCidrList('64:ff9b::/96');
      expect(isPublicAddress('64:ff9b::8.8.8.8', nat64)).toBe(true);
      expect(isPublicAddress('64:ff9b::10.0.0.1', nat64)).toBe(false);
      expect(isPublicAddress('64:ff9b::127.0.0.1', nat64)).toBe(false);
      expect(checkIpAddress(ipaddr.parse('64:ff9b::a00:1'), nat64)).toEqual(['ipv4_embedded']);
      expect(isPublicAddress('64:ff9b::10.0.0.1', parseCidrList('64:ff9b::/96,10.0.0.0/8'))).toBe(true);
      const wide = parseCidrList('::/0');
      expect(isPublicAddress('2002:a00:1::1', wide)).toBe(false);
      expect(isPublicAddress('2002:808:808::1', wide)).toBe(true);
      expect(isPublicAddress('::a00:1', wide)).toBe(false);
      expect(isPublicAddress('fe80::200:5efe:a00:1', wide)).toBe(false);
      expect(isPublicAddress('fe80::200:5efe:808:808', wide)).toBe(true);
      // Teredo carries the server in clear and the client inverted: both are judged.
      expect(isPublicAddress('2001:0:808:808::f5ff:fffe', wide)).toBe(false);
      expect(isPublicAddress('2001:0:808:808::f7f7:f7f7', wide)).toBe(true);
      expect(isPublicAddress('64:ff9b::a9fe:a9fe', wide)).toBe(false);
    });

    it('uses the process-wide allow list when none is given', () => {
      expect(isPublicAddress('10.0.0.1')).toBe(false);
      setDefaultUrlPolicy({ allowCidrs: allow });
      expect(isPublicAddress('10.0.0.1')).toBe(true);
      expect(isPublicAddress('10.0.0.1', [])).toBe(false);
    });
  });
});

describe('checkIpAddress', () => {
  it.each([
    ['::', ['private_address']],
    ['::1', ['private_address']],
    ['::1.2.3.4', ['private_address', 'ipv4_embedded']],
    ['::ffff:127.0.0.1', ['private_address', 'ipv4_embedded']],
    ['2606:4700:4700::1111', []],
  ])('%s breaks %j', (address, expected) => {
    expect(checkIpAddress(ipaddr.parse(address), [])).toEqual(expected);
  });
});
