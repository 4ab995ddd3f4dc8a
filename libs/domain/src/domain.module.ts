import { Module } from '@nestjs/common';
import { AuditRecorder, AuditRelaySignal } from '@app/audit';
import { PersistenceModule } from '@app/persistence';
import { DeliveryQueue } from '@app/queue';
import { ApiKeysService } from './api-keys/api-keys.service';
import { DeliveriesService } from './deliveries/deliveries.service';
import { RotationSweepService } from './rotation/rotation-sweep.service';
import { RotationService } from './rotation/rotation.service';
import { AuditHistoryService } from './audit/audit-history.service';
import { Clock, SystemClock } from './clock';
import { SecretCipher } from './secrets/secret.cipher';
import { SecretsService } from './secrets/secrets.service';
import { WebhooksService } from './webhooks/webhooks.service';

/** What the apps use: provided here and exported. */
const SHARED = [
  AuditRecorder,
  SecretCipher,
  SecretsService,
  WebhooksService,
  ApiKeysService,
  DeliveryQueue,
  DeliveriesService,
  RotationService,
  RotationSweepService,
  AuditHistoryService,
];

/** The use cases shared by the API, the worker and the CLI. Override {@link Clock} in tests. */
@Module({
  imports: [PersistenceModule],
  providers: [{ provide: Clock, useClass: SystemClock }, AuditRelaySignal, ...SHARED],
  exports: [Clock, ...SHARED, PersistenceModule],
})
export class DomainModule {}
