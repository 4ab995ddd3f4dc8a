import { Controller, Get, Header, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { MetricsService } from './metrics.service';

/**
 * Prometheus exposition, unauthenticated like the health routes: it carries counts and latencies only (no
 * ids, no URLs, no secrets), and is meant to be reachable from the cluster network, not the internet.
 */
@ApiTags('observability')
@Controller('metrics')
export class MetricsController {
  constructor(private readonly metrics: MetricsService) {}

  @Get()
  @Header('cache-control', 'no-store')
  @ApiOperation({
    operationId: 'getMetrics',
    summary: 'Prometheus metrics: HTTP traffic, rotations, audit outbox, queues, deliveries',
  })
  @ApiOkResponse({ description: 'Prometheus text exposition format', content: { 'text/plain': {} } })
  async scrape(@Res({ passthrough: true }) reply: FastifyReply): Promise<string> {
    void reply.type(this.metrics.contentType);
    return this.metrics.render();
  }
}
