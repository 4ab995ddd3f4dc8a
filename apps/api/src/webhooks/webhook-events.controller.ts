import { Body, Controller, Get, HttpCode, Param, Post, Query, Req, UseGuards } from '@nestjs/common';
import { ApiAcceptedResponse, ApiOkResponse, ApiOperation, ApiSecurity, ApiTags } from '@nestjs/swagger';
import { DeliveriesService, type RequestContext } from '@app/domain';
import { ApiKeyGuard } from '../auth/api-key.guard';
import { CurrentContext } from '../auth/request-context.decorator';
import { Idempotent } from '../idempotency/idempotency.guard';
import { IdempotencyService } from '../idempotency/idempotency.service';
import { presentDelivery, toDeliveryLogQuery } from './delivery.presenter';
import { DeliveryLogResponse, TestEventAcceptedResponse } from './dto/event.response';
import { ListEventsQuery } from './dto/list-events.query';
import { SendTestEventDto } from './dto/send-test-event.dto';

const presentAccepted = (sent: {
  externalEventId: string;
  eventType: string;
}): TestEventAcceptedResponse => ({ external_event_id: sent.externalEventId, event_type: sent.eventType });

/** Test events and the delivery log of a webhook (Anchor-compatible). One domain call each. */
@ApiTags('webhooks')
@ApiSecurity('anchor-api-key')
@Controller('v1/webhooks')
@UseGuards(ApiKeyGuard)
export class WebhookEventsController {
  constructor(
    private readonly deliveries: DeliveriesService,
    private readonly idempotency: IdempotencyService,
  ) {}

  @Post(':id/test')
  @HttpCode(202)
  @Idempotent()
  @ApiOperation({
    operationId: 'sendTestEvent',
    summary: 'Send a synthetic event through the real signing, delivery and retry path',
  })
  @ApiAcceptedResponse({ type: TestEventAcceptedResponse })
  async sendTest(
    @CurrentContext() ctx: RequestContext,
    @Param('id') id: string,
    @Body() dto: SendTestEventDto,
    @Req() req: object,
  ): Promise<TestEventAcceptedResponse> {
    const sent = await this.deliveries.sendTest(
      ctx,
      id,
      dto.event_type,
      this.idempotency.commitWith(req, 202, presentAccepted),
    );
    return presentAccepted(sent);
  }

  @Get(':id/events')
  @ApiOperation({
    operationId: 'listDeliveries',
    summary: 'The delivery log of a webhook, newest first (kept 7 days)',
  })
  @ApiOkResponse({ type: DeliveryLogResponse })
  async list(
    @CurrentContext() ctx: RequestContext,
    @Param('id') id: string,
    @Query() query: ListEventsQuery,
  ): Promise<DeliveryLogResponse> {
    const q = toDeliveryLogQuery(query);
    const page = await this.deliveries.list(ctx, id, q);
    const withPayload = query.include_payload === 'true';
    return {
      events: page.rows.map((d) => presentDelivery(d, withPayload)),
      pagination: { limit: page.rows.length, offset: q.offset, total: page.total },
    };
  }
}
