import { parseCidrList } from './cidr-list.parser';

describe('parseCidrList', () => {
  it.each([
    ['', []],
    ['   ', []],
    ['127.0.0.1/32', ['127.0.0.1/32']],
    ['127.0.0.1/32,10.0.0.0/8', ['127.0.0.1/32', '10.0.0.0/8']],
    [' 10.0.0.0/8 , 192.168.0.0/16 ', ['10.0.0.0/8', '192.168.0.0/16']],
    ['10.1.2.3', ['10.1.2.3/32']],
    ['0.0.0.0/0', ['0.0.0.0/0']],
    ['fd00::/8', ['fd00::/8']],
    ['FD00:0:0::/16', ['fd00::/16']],
    ['::1', ['::1/128']],
    ['::ffff:0:0/96', ['::ffff:0:0/96']],
  ])('parses %j', (text, expected) => {
    expect(parseCidrList(text).map((e) => e.cidr)).toEqual(expected);
  });

  it('records family and prefix', () => {
    expect(parseCidrList('10.0.0.0/8,fd00::/8').map((e) => [e.kind, e.prefix])).toEqual([
      ['ipv4', 8],
      ['ipv6', 8],
    ]);
  });

  it.each([
    ['10.0.0.0/33', /entry 1 "10.0.0.0\/33": prefix length/],
    ['10.0.0.0/8,fd00::/129', /entry 2 "fd00::\/129": prefix length/],
    ['10.0.0.0/', /prefix length/],
    ['10.0.0.0/-1', /prefix length/],
    ['10.0.0.0/8a', /prefix length/],
    ['10.0.0.1/8', /host bits are set; did you mean 10.0.0.0\/8\?/],
    ['fd00::1/8', /host bits are set; did you mean fd00::\/8\?/],
    ['10.0.0.0/8,', /entry 2 "": empty entry/],
    [',10.0.0.0/8', /entry 1 "": empty entry/],
    ['10.0/16', /not an IPv4 address in dotted-decimal form/],
    ['010.0.0.0/8', /not an IPv4 address/],
    ['0x0a.0.0.0/8', /not an IPv4 address/],
    ['256.0.0.0/8', /not an IPv4 address/],
    ['localhost', /not an IPv4 address/],
    ['fe80::1%eth0/128', /zone ids are not allowed/],
    ['10.0.0.0/8;192.168.0.0/16', /entry 1/],
  ])('rejects %j with a clear error', (text, message) => {
    expect(() => parseCidrList(text)).toThrow(message);
  });
});
