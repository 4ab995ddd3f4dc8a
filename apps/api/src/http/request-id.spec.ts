import type { IncomingMessage } from 'node:http';
import { requestIdFor } from './request-id';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const withId = (value?: string | string[]) =>
  ({ headers: value === undefined ? {} : { 'x-request-id': value } }) as unknown as IncomingMessage;

describe('requestIdFor', () => {
  it.each([
    ['a short id', 'r1'],
    ['a UUID', '0f8fad5b-d9cb-469f-a165-70867728950e'],
    ['an id with spaces', 'trace 42'],
    ['an id with a tab inside', 'a\tb'],
    ['128 characters', 'x'.repeat(128)],
    ['a 32-hex trace id', '4bf92f3577b34da6a3ce929d0e0e4736'],
  ])('echoes %s', (_, id) => {
    expect(requestIdFor(withId(id))).toBe(id);
  });

  it.each([
    ['no header', undefined],
    ['an empty one', ''],
    ['a blank one', '  \t '],
    ['129 characters', 'x'.repeat(129)],
    ['a control character', 'a\u0001b'],
    ['a line break', 'a\nb'],
    ['DEL', 'a\u007fb'],
    ['a C1 control (NEL, byte 0x85)', Buffer.from([0x61, 0x85, 0x62]).toString('latin1')],
    [
      'non-ASCII text as Node reads it (UTF-8 bytes as latin1)',
      Buffer.from('é-trace', 'utf8').toString('latin1'),
    ],
    ['a latin1 byte (0xe9)', Buffer.from([0x61, 0xe9, 0x62]).toString('latin1')],
    ['a repeated header', ['a', 'b']],
    ['an API key', 'ak_bPRQ_t8MKCIYs6M_mNhmFnngmJ9LfwZNxLZHp1Nem40'],
    ['an API key inside it', 'trace-ak_bPRQ_t8MKCIYs6M_mNhmFnngmJ9LfwZNxLZHp1Nem40'],
    ['a signing secret (64 hex digits)', '547d8411302764be554f4be92c282edc1771b8ed24247bf31476e4374635fb9a'],
  ])('replaces %s with a new UUID', (_, id) => {
    expect(requestIdFor(withId(id))).toMatch(UUID);
  });
});
