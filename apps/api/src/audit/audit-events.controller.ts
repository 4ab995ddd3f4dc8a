import { Controller, Get, Query, UseGuards } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiSecurity, ApiTags } from '@nestjs/swagger';
import { AuditHistoryService, type RequestContext } from '@app/domain';
import { ApiKeyGuard } from '../auth/api-key.guard';
import { CurrentContext } from '../auth/request-context.decorator';
import { AuditEventListResponse } from './dto/audit-event.response';
import { ListAuditEventsQuery } from './dto/list-audit-events.query';

/** The project's audit history. */
@ApiTags('audit')
@ApiSecurity('anchor-api-key')
@Controller('v1/audit-events')
@UseGuards(ApiKeyGuard)
export class AuditEventsController {
  constructor(private readonly history: AuditHistoryService) {}

  @Get()
  @ApiOperation({
    operationId: 'listAuditEvents',
    summary: 'Audit events of the project, newest first, with cursor pagination',
  })
  @ApiOkResponse({ type: AuditEventListResponse })
  async list(
    @CurrentContext() ctx: RequestContext,
    @Query() query: ListAuditEventsQuery,
  ): Promise<AuditEventListResponse> {
    const page = await this.history.list(ctx, {
      webhookId: query.webhook_id,
      type: query.type,
      since: query.since,
      until: query.until,
      limit: query.limit,
      cursor: query.cursor,
    });
    return { events: page.events, next_cursor: page.nextCursor };
  }
}
