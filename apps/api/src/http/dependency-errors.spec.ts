import { isDependencyUnavailable } from './dependency-errors';

describe('isDependencyUnavailable', () => {
  it.each([
    'Connection is closed.',
    'connect ECONNREFUSED 127.0.0.1:6379',
    'Command timed out',
    'CLUSTERDOWN The cluster is down',
    "Cluster isn't ready and enableOfflineQueue options is false",
    'Failed to refresh slots cache.',
    'None of startup nodes is available',
  ])('takes the Redis error "%s" for an unavailable dependency (503)', (message) => {
    expect(isDependencyUnavailable(new Error(message))).toBe(true);
  });

  it('takes other errors for what they are (500)', () => {
    expect(isDependencyUnavailable(new Error('ERR wrong number of arguments'))).toBe(false);
    expect(isDependencyUnavailable(new TypeError("Cannot read properties of undefined (reading 'id')"))).toBe(
      false,
    );
    expect(isDependencyUnavailable('None of startup nodes is available')).toBe(false);
  });
});
