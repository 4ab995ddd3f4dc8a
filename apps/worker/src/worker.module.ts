import { BullModule } from '@nestjs/bullmq';
import { Module } from '@nestjs/common';
import { APP_CONFIG, ConfigModule, LoggingModule, type AppConfig } from '@app/config';
import { AuditStreamPublisher } from '@app/audit';
import { DomainModule } from '@app/domain';
import { QUEUE_PREFIX, QueueName, RedisModule, bullConnection } from '@app/queue';
import { DeliveryProcessor, requestTimerProvider } from './delivery/delivery.processor';
import { deliverySenderProviders } from './delivery/delivery-sender.provider';
import {
  DEFAULT_EVENTS_INGEST_OPTIONS,
  EVENTS_INGEST_OPTIONS,
  EventsIngestor,
} from './delivery/events.ingestor';
import { WorkerHeartbeatService } from './health/worker-heartbeat.service';
import { AuditRelayProcessor } from './audit/audit-relay.processor';
import { AuditRelayService } from './audit/audit-relay.service';
import { AuditRetentionService } from './audit/audit-retention.service';
import { AuditScheduler } from './audit/audit.scheduler';
import { HousekeepingProcessor } from './housekeeping/housekeeping.processor';
import { HousekeepingScheduler } from './housekeeping/housekeeping.scheduler';
import { RotationProcessor } from './rotation/rotation.processor';
import { RotationScheduler } from './rotation/rotation.scheduler';
import { OutageShutdownService } from './scheduling/outage-shutdown.service';

/** The worker: queues and scheduled work, no HTTP port. */
@Module({
  imports: [
    ConfigModule,
    LoggingModule,
    RedisModule,
    DomainModule,
    BullModule.forRootAsync({
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => ({
        connection: bullConnection(config.redis),
        prefix: QUEUE_PREFIX,
      }),
    }),
    BullModule.registerQueue({ name: QueueName.Housekeeping }),
    BullModule.registerQueue({ name: QueueName.Delivery }),
    BullModule.registerQueue({ name: QueueName.Rotation }),
    BullModule.registerQueue({ name: QueueName.Audit }),
  ],
  providers: [
    HousekeepingProcessor,
    HousekeepingScheduler,
    ...deliverySenderProviders,
    requestTimerProvider,
    DeliveryProcessor,
    { provide: EVENTS_INGEST_OPTIONS, useValue: DEFAULT_EVENTS_INGEST_OPTIONS },
    EventsIngestor,
    RotationProcessor,
    RotationScheduler,
    WorkerHeartbeatService,
    AuditStreamPublisher,
    AuditRelayService,
    AuditRelayProcessor,
    AuditRetentionService,
    AuditScheduler,
    OutageShutdownService,
  ],
})
export class WorkerModule {}
