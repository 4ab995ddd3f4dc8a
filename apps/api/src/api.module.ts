import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { ConfigModule, LoggingModule } from '@app/config';
import { DomainModule } from '@app/domain';
import { ApiKeyChangeListener } from '@app/persistence';
import { RedisModule } from '@app/queue';
import { AuditEventsController } from './audit/audit-events.controller';
import { ApiKeyCache } from './auth/api-key.cache';
import { ApiKeyGuard } from './auth/api-key.guard';
import { HealthController } from './health/health.controller';
import { ReadinessIndicator } from './health/readiness.indicator';
import { RotationController } from './rotation/rotation.controller';
import { IdempotencyGuard } from './idempotency/idempotency.guard';
import { IdempotencyService } from './idempotency/idempotency.service';
import { MetricsController } from './observability/metrics.controller';
import { MetricsService } from './observability/metrics.service';
import { MonitoredQueuesProvider } from './observability/monitored-queues.provider';
import { RateLimiterService } from './rate-limit/rate-limiter.service';
import { UrlRejectionAuditFilter } from './webhooks/url-rejection-audit.filter';
import { WebhookEventsController } from './webhooks/webhook-events.controller';
import { WebhooksController } from './webhooks/webhooks.controller';

/** The HTTP API: routes only; scheduled work lives in the worker. */
@Module({
  imports: [
    ConfigModule,
    LoggingModule,
    RedisModule,
    DomainModule,
    TerminusModule.forRoot({ logger: false }),
  ],
  controllers: [
    WebhooksController,
    WebhookEventsController,
    RotationController,
    AuditEventsController,
    HealthController,
    MetricsController,
  ],
  providers: [
    ApiKeyChangeListener,
    ApiKeyCache,
    ApiKeyGuard,
    UrlRejectionAuditFilter,
    IdempotencyService,
    IdempotencyGuard,
    RateLimiterService,
    MetricsService,
    MonitoredQueuesProvider,
    ReadinessIndicator,
  ],
})
export class ApiModule {}
