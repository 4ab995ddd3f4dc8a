import { createHash } from 'node:crypto';
import type { QueryRunner } from 'typeorm';
import { MIGRATIONS } from '../data-source';

/**
 * The SQL each migration runs, up and down, as SHA-256. A migration that has been released may have run on a
 * database already: changing what it runs would leave such databases different from new ones, so its SQL is
 * frozen here (shared SQL builders, such as the one of `rotate_webhook_secret`, included). A new migration adds
 * its line; an existing line never changes.
 */
const PINNED: Record<string, { up: string; down: string }> = {
  InitialSchema1763800000000: {
    up: '024b41f32120d6be2ac2cbd353c2c845e252ac6e6fc4b25943c20121b0a14ccd',
    down: '1ce77f9ea9af6863121d24ad24f7662e73ae99164d6887d593c03e1a6451ae8c',
  },
  RotationPolicies1764000000000: {
    up: 'bc93d7f6c0e7e98bf16dcf6fc5d367a96cc399055c12a251b2ccc99074c9c9d6',
    down: '0b7d1be958c26fcb8d77bccb1edf3953fe095dd3066c2178cfe250324f7cabba',
  },
  Deliveries1764100000000: {
    up: '72687d320da88d9790b31c369cac45fbc95f862d8948d7946a1ed7c8335b7bd2',
    down: '6f514f6dd0fc46e72a1b22fee3b3b2b962dbc0cd0ff1d64c34a1f0f3c981f91c',
  },
  IdempotencyAndMetrics1764200000000: {
    up: '974e3128d69294756f31f537be847f85a5b19872ef6f52fce191f977a1ab4435',
    down: '32fb242b6f4bef01b1759baf4a5d20913de26a547302ec7e75de171bfe657579',
  },
  ProjectQuotas1764300000000: {
    up: '731e6ad0a5972a5af3502faea3af16c7da4842c89b745e94b506353971bec2f8',
    down: '6555931e2f1e3ea902938a5aeb47c57deb10e57b17a20a0b6f3e93e170386495',
  },
  ApiKeyChangeNotifications1764400000000: {
    up: 'aafec34e461fac4b37d8e4517909444f764d3a7f983aea25c95dc66c20cc0367',
    down: 'a1d4df2720766de12ac541ee982088a380f68631a07986a5aeac7f7b0cfb71a7',
  },
  ProjectQuotaShards1764500000000: {
    up: 'd4689e62297e40ed96d970623689e11770dce1d721d986c8af7da41cdb7017f4',
    down: '1b093c8444754d70f8f0c2a1ebdb507654bc3b1d0384cd8dc4760694d36cb024',
  },
  RotateSecretFunction1764600000000: {
    up: '113874bcd99baa8acdb8d1e9eb5d287590f36f533681f8e0ffbf7a99dd92d212',
    down: '132b34f55c3f7514f7f8352e5e6f479eca72bb014dd92775232e8762932ddb01',
  },
  RotateSecretTimeAfterLock1764700000000: {
    up: '0a7a21f2486fb3b948fe4ea0d5191cd6e41438e9f2fd188c0e0a7b90b1537040',
    down: 'bf2ab2ca1f6a87653df4026e09544d55862acb289bf97952040125f388ace6ca',
  },
  WebhookLastChange1764800000000: {
    up: '5546c1d4b02d11ab96457dbf2571c46c933fa53b17f03b9fc3fa5e9320308550',
    down: '487abe604897e481b01863fc6e96748c8671f24e6abb247b18d9e9ae27a507fd',
  },
  DeletedWebhooksIndex1764900000000: {
    up: 'ab76db464eb3d9748c93f31edf5e81c1ebaaaf8a088673e33a4feb50bde134c5',
    down: '933f743ed527b70a70552f09594277ef4e0f0cc6030f8f8d28b9125a08c5027d',
  },
  RotationZeroGraceExpired1765000000000: {
    up: 'fef8e25a84f8bc9d9435cb9a9a6cdd091051a136336b47c4cb9c5054f99e78a9',
    down: 'e09208f3c95028241a392c6d52915713a6408d1fc0df013e630acb78e314cf31',
  },
  RotationTimeAfterLongWait1765100000000: {
    up: '13c5044a227ecebffc3670ac34040ea76ee16adc8135aa4c73c64f81fb9ee3a5',
    down: 'a1aef5e6f32cd69105f67b0e95ff8596fd8c1b9a0ecabfcb5205afa04da114e5',
  },
  PreviousSecretsBound1765200000000: {
    up: '484c933859d3aca0c7d116327bae7452466117e172a64578dec9b3c99359f0b8',
    down: 'df3a900aa8edc10a700a0261389d3c519e25c4ba29784cf02ae870d9398c52bd',
  },
  IdempotentResponsesForgetSecrets1765300000000: {
    up: 'b4fa2869b154f800530913fea765d33f59ddac5fb555dd34ab01e97482378dfe',
    down: '7ad80d4177d665cc3bbf4c2908f1dc3394d7ff58b7cf3b05c23179c71c39bde5',
  },
  AuditHistoryFilterIndexes1765400000000: {
    up: '519744868226076a535c364b99e9803671af3f5adbe0cfda299408a699f0512a',
    down: '8c1557cacb3222d3fe700e8909a799d54365fb85ff09754ff2ca484799fb441a',
  },
  DeliveryLogFilterIndexes1765500000000: {
    up: '7589decc62176fa9e36be76bf9b720c97fc7f5b35a58ead0d95d565d95ba9835',
    down: 'b4c7e964af71662bc45e7c1d81c5ff29c39912a7e133bc131005716ec10b2388',
  },
  SecretsReplacementOrder1765600000000: {
    up: '4cb2e1b336b63955a579359cd590174168d3c7b01a7b0bffa6d64b5c7036789b',
    down: '0eac2b13a49c2394b11c4a1994c274c9c8b3af9c3ab6224a7b9062627f6043fc',
  },
  DeliveryAttemptedAt1765700000000: {
    up: '282845cc5f6faf8031b0c9fbf1686d59ea0fc0991b2588f464e370c31a0b0d70',
    down: '5416520cb45db341dd53352eb1dcf9792a0377790dc47102c630204fb67c6f5a',
  },
};

/** What a migration sends to Postgres, in order. */
async function sqlOf(run: (q: QueryRunner) => Promise<void>): Promise<string> {
  const sent: string[] = [];
  const q = { query: async (sql: string) => (sent.push(sql), []) } as unknown as QueryRunner;
  await run(q);
  return createHash('sha256').update(sent.join('\n;\n')).digest('hex');
}

describe('released migrations', () => {
  it('are all still there, in their order', () => {
    expect(MIGRATIONS.map((M) => M.name)).toEqual(Object.keys(PINNED));
  });

  it.each(MIGRATIONS.map((M) => [M.name, M] as const))(
    '%s runs the SQL it was released with',
    async (_, M) => {
      const migration = new M();
      const actual = { up: await sqlOf((q) => migration.up(q)), down: await sqlOf((q) => migration.down(q)) };
      expect(actual).toEqual(PINNED[M.name]);
    },
  );
});
