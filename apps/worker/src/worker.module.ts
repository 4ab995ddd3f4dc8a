import { BullModule } from '@nestjs/bullmq';
import { Module } from '@nestjs/common';
import { APP_CONFIG, ConfigModule, LoggingModule, type AppConfig } from '@app/config';
import { DomainModule } from '@app/domain';
import { QUEUE_PREFIX, QueueName, RedisModule, redisOptionsFromUrl } from '@app/queue';
import { HousekeepingProcessor } from './housekeeping/housekeeping.processor';
import { HousekeepingScheduler } from './housekeeping/housekeeping.scheduler';

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
        connection: redisOptionsFromUrl(config.redis.url),
        prefix: QUEUE_PREFIX,
      }),
    }),
    BullModule.registerQueue({ name: QueueName.Housekeeping }),
  ],
  providers: [HousekeepingProcessor, HousekeepingScheduler],
})
export class WorkerModule {}
