import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { ConfigModule } from '@app/config';
import { DomainModule } from '@app/domain';
import { RedisModule } from '@app/queue';
import { AuditEventsController } from './audit/audit-events.controller';
import { ApiKeyGuard } from './auth/api-key.guard';
import { HealthController } from './health/health.controller';
import { RotationController } from './rotation/rotation.controller';
import { UrlRejectionAuditInterceptor } from './webhooks/url-rejection-audit.interceptor';
import { WebhookEventsController } from './webhooks/webhook-events.controller';
import { WebhooksController } from './webhooks/webhooks.controller';

/** The HTTP API: routes only; scheduled work lives in the worker. */
@Module({
  imports: [ConfigModule, RedisModule, DomainModule, TerminusModule.forRoot({ logger: false })],
  controllers: [
    WebhooksController,
    WebhookEventsController,
    RotationController,
    AuditEventsController,
    HealthController,
  ],
  providers: [ApiKeyGuard, UrlRejectionAuditInterceptor],
})
export class ApiModule {}
