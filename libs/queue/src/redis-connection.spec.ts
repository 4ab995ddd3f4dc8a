import { redisOptionsFromUrl } from './redis-connection';

describe('redisOptionsFromUrl', () => {
  it.each([
    ['redis://127.0.0.1:6379/0', { host: '127.0.0.1', port: 6379, db: 0, tls: undefined }],
    ['redis://cache.internal', { host: 'cache.internal', port: 6379, db: 0, tls: undefined }],
    ['redis://[fd00::1]:7000/3', { host: 'fd00::1', port: 7000, db: 3, tls: undefined }],
    [
      'rediss://cache.example.com:6380',
      { host: 'cache.example.com', port: 6380, tls: { servername: 'cache.example.com' } },
    ],
    ['rediss://10.0.0.7:6380', { host: '10.0.0.7', tls: {} }],
    ['rediss://[fd00::1]:6380', { host: 'fd00::1', tls: {} }],
  ])('%s', (url, expected) => {
    expect(redisOptionsFromUrl(url)).toMatchObject(expected);
  });

  it('decodes the credentials', () => {
    expect(redisOptionsFromUrl('redis://app%40x:p%3Ass@cache:6379')).toMatchObject({
      username: 'app@x',
      password: 'p:ss',
    });
  });
});
