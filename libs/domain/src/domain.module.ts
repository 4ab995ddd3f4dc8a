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
import { SecretCipher } from './secrets/secret-cipher';
import { SecretsService } from './secrets/secrets.service';
import { WebhooksService } from './webhooks/webhooks.service';

/** The use cases shared by the API, the worker and the CLI. Override {@link Clock} in tests. */
@Module({
  imports: [PersistenceModule],
  providers: [
    { provide: Clock, useClass: SystemClock },
    AuditRelaySignal,
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
  ],
  exports: [
    Clock,
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
    PersistenceModule,
  ],
})
export class DomainModule {}
