import fixture from '../../../test/fixtures/signature-vectors.json';
import { deliveryHeaders } from './delivery-headers.builder';

describe('deliveryHeaders', () => {
  it('builds every header of the spec, with the signature of the vector', () => {
    const vector = fixture.vectors[1];
    expect(
      deliveryHeaders({
        eventType: 'task.failed',
        deliveryId: '0b6f6f2e-8a55-4f3c-9b1e-6c1f1a6f3d21',
        timestamp: vector.timestamp,
        body: vector.body,
        secrets: vector.secrets,
      }),
    ).toEqual({
      'Content-Type': 'application/json',
      'User-Agent': 'Anchor-Webhooks/1.0',
      'Anchor-Event': 'task.failed',
      'Anchor-Delivery-Id': '0b6f6f2e-8a55-4f3c-9b1e-6c1f1a6f3d21',
      'Anchor-Timestamp': String(vector.timestamp),
      'Anchor-Signature': vector.signature_header,
    });
  });
});
