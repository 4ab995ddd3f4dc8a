import { WEBHOOK_URL_CASES } from '../../../test/fixtures/webhook-url-cases';
import { checkWebhookUrl } from './webhook-url.rule';
import { parseCidrList, type CidrList } from './cidr-list.parser';
import { setDefaultUrlPolicy } from './url-policy.store';

describe('checkWebhookUrl: case table', () => {
  it('has at least 300 cases, at least 100 of them accepted', () => {
    expect(WEBHOOK_URL_CASES.length).toBeGreaterThanOrEqual(300);
    expect(WEBHOOK_URL_CASES.filter((c) => c.ok).length).toBeGreaterThanOrEqual(100);
  });

  const label = (url: string) => JSON.stringify(url.length > 80 ? `${url.slice(0, 77)}...` : url);

  it.each(WEBHOOK_URL_CASES.filter((c) => c.ok).map((c) => [label(c.url), c] as const))(
    'accepts %s',
    (_, c) => {
      const result = checkWebhookUrl(c.url, {});
      expect(result.violations).toEqual([]);
      expect(result.ok).toBe(true);
      expect(result.host).not.toBeNull();
    },
  );

  it.each(WEBHOOK_URL_CASES.filter((c) => !c.ok).map((c) => [label(c.url), c.rule, c] as const))(
    'refuses %s with %s',
    (_, rule, c) => {
      const result = checkWebhookUrl(c.url, {});
      expect(result.ok).toBe(false);
      expect(result.violations.map((v) => v.rule)).toContain(rule);
    },
  );
});

describe('checkWebhookUrl: result shape', () => {
  it('refuses a non-string with form and no host', () => {
    for (const value of [
      undefined,
      null,
      42,
      {},
      ['https://example.com/'],
      new URL('https://example.com/'),
    ]) {
      expect(checkWebhookUrl(value, {})).toEqual({
        ok: false,
        host: null,
        violations: [{ rule: 'form', message: 'url must be a string' }],
      });
    }
  });

  it('uses the wording of the API contract for private addresses', () => {
    expect(checkWebhookUrl('https://10.0.0.1/', {}).violations).toEqual([
      { rule: 'private_address', message: 'url must not point at a private, loopback or link-local address' },
    ]);
    expect(checkWebhookUrl('http://example.com/', {}).violations).toEqual([
      { rule: 'scheme', message: 'url must use https' },
    ]);
  });

  it('writes every message as a sentence starting with "url "', () => {
    for (const c of WEBHOOK_URL_CASES) {
      for (const v of checkWebhookUrl(c.url, {}).violations) expect(v.message).toMatch(/^url [a-z]/);
    }
  });

  it('lists every violated rule once, in a stable order', () => {
    const result = checkWebhookUrl('http://user@2852039166:8080/', {});
    expect(result.violations.map((v) => v.rule)).toEqual([
      'scheme',
      'credentials',
      'ip_literal_form',
      'private_address',
      'metadata_service',
    ]);
    expect(
      checkWebhookUrl('https://a..b..c/ x\ty', {}).violations.filter((v) => v.rule === 'form'),
    ).toHaveLength(1);
  });

  it('asks for brackets around an IPv6 address written without them, and judges that address', () => {
    expect(checkWebhookUrl('https://2606:4700::1111/hook', {}).violations).toEqual([
      { rule: 'form', message: 'url must enclose an IPv6 address in brackets' },
    ]);
    expect(checkWebhookUrl('https://::1/', {}).violations.map((v) => v.rule)).toEqual([
      'form',
      'private_address',
    ]);
    expect(checkWebhookUrl('https://fe80::1%25eth0/', {}).violations.map((v) => v.rule)).toEqual([
      'form',
      'zone_id',
      'private_address',
    ]);
  });

  it.each([
    ['https://Example.COM./hook?secret=1', 'example.com'],
    ['HTTPS://BÜCHER.de:8443/', 'xn--bcher-kva.de'],
    ['https://[2606:4700:4700:0:0:0:0:1111]/', '[2606:4700:4700::1111]'],
    ['https://127.0.0.1:8080/?q=1', '127.0.0.1'],
    ['https://0x7f.1/', '127.0.0.1'],
    ['https://u:p@example.com/', 'example.com'],
    ['https://[fe80::1%25eth0]/', null],
    ['not a url', null],
  ])('normalizes the host of %s to %s, never with the query', (url, host) => {
    expect(checkWebhookUrl(url, {}).host).toBe(host);
  });
});

describe('checkWebhookUrl: inputs built to be expensive', () => {
  it('refuses an over-long URL for its length alone, without reading the rest', () => {
    for (const url of [
      'http://user@' + 'a.'.repeat(32_000) + 'internal/',
      'https://a' + ' '.repeat(60_000) + 'x',
      'https://[' + '%'.repeat(5000) + ']/',
    ]) {
      expect(checkWebhookUrl(url, {})).toEqual({
        ok: false,
        host: null,
        violations: [{ rule: 'length', message: 'url must be between 1 and 2048 characters long' }],
      });
    }
  });

  it('still finds listed names at the end of a name of a thousand labels', () => {
    const many = 'a.'.repeat(1000);
    expect(checkWebhookUrl(`https://${many}svc.cluster.local/`, {}).violations.map((v) => v.rule)).toEqual([
      'internal_name',
    ]);
    expect(
      checkWebhookUrl(`https://${many}metadata.google.internal/`, {}).violations.map((v) => v.rule),
    ).toEqual(['metadata_service', 'internal_name']);
    expect(checkWebhookUrl(`https://${many}sts.amazonaws.com/`, {}).violations.map((v) => v.rule)).toEqual([
      'aws_endpoint',
    ]);
    expect(checkWebhookUrl(`https://${many}example.com/`, {}).ok).toBe(true);
  });

  it('reports spaces and controls inside a long run once, as form', () => {
    const result = checkWebhookUrl('https://example.com/' + ' '.repeat(1000) + 'x', {});
    expect(result.violations.map((v) => v.rule)).toEqual(['form']);
  });
});

describe('checkWebhookUrl: policy', () => {
  afterEach(() => setDefaultUrlPolicy({}));
  const allow = parseCidrList('127.0.0.1/32,10.0.0.0/8,fd00::/8,169.254.0.0/16');

  it.each([
    ['https://127.0.0.1:8443/hook', true],
    ['https://10.1.2.3/', true],
    ['https://[fd00::5]/', true],
    ['https://169.254.10.10/', true],
    ['https://127.0.0.2/', false],
    ['https://192.168.1.1/', false],
    ['https://169.254.169.254/', false],
    ['https://2130706433/', false],
    ['https://127.1/', false],
    ['https://localhost/', false],
    ['https://[::ffff:127.0.0.1]/', false],
    ['http://10.1.2.3/', false],
  ])('with TARGET_ALLOW_CIDRS %s is accepted: %s', (url, ok) => {
    expect(checkWebhookUrl(url, { allowCidrs: allow }).ok).toBe(ok);
  });

  it('relaxes only the address rules, never the spelling or the names', () => {
    expect(rulesOf('https://127.1/', allow)).toEqual(['ip_literal_form']);
    expect(rulesOf('https://169.254.169.254/', allow)).toEqual(['metadata_service']);
    expect(rulesOf('https://localhost/', allow)).toEqual(['internal_name', 'single_label']);
  });

  it('uses the process-wide policy when none is passed, and an explicit policy over it', () => {
    expect(checkWebhookUrl('https://10.0.0.1/').ok).toBe(false);
    setDefaultUrlPolicy({ allowCidrs: allow });
    expect(checkWebhookUrl('https://10.0.0.1/').ok).toBe(true);
    expect(checkWebhookUrl('https://10.0.0.1/', {}).ok).toBe(false);
  });
});

function rulesOf(url: string, allowCidrs: CidrList): string[] {
  return checkWebhookUrl(url, { allowCidrs }).violations.map((v) => v.rule);
}
