import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Param,
  Patch,
  Post,
  Req,
  UseFilters,
  UseGuards,
} from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiSecurity, ApiTags } from '@nestjs/swagger';
import { WebhooksService, type RequestContext } from '@app/domain';
import { ApiKeyGuard } from '../auth/api-key.guard';
import { CurrentContext } from '../auth/request-context.decorator';
import { NoBody } from '../http/no-body.guard';
import { Idempotent } from '../idempotency/idempotency.guard';
import { IdempotencyService } from '../idempotency/idempotency.service';
import { CreateWebhookDto } from './dto/create-webhook.dto';
import { RotateSecretDto } from './dto/rotate-secret.dto';
import { UpdateWebhookDto } from './dto/update-webhook.dto';
import {
  OkResponse,
  WebhookListResponse,
  WebhookResponse,
  WebhookWithSecretResponse,
} from './dto/webhook.response';
import { UrlRejectionAuditFilter } from './url-rejection-audit.filter';
import { presentWebhook, presentWebhookWithSecret } from './webhook.presenter';

/** The Anchor-compatible webhook routes. One domain call each. */
@ApiTags('webhooks')
@ApiSecurity('anchor-api-key')
@Controller('v1/webhooks')
@UseGuards(ApiKeyGuard)
export class WebhooksController {
  constructor(
    private readonly webhooks: WebhooksService,
    private readonly idempotency: IdempotencyService,
  ) {}

  @Post()
  @HttpCode(201)
  @UseFilters(UrlRejectionAuditFilter)
  @Idempotent()
  @ApiOperation({
    operationId: 'createWebhook',
    summary: 'Register a webhook; the response carries its signing secret, shown only here',
  })
  @ApiCreatedResponse({ type: WebhookWithSecretResponse })
  async create(
    @CurrentContext() ctx: RequestContext,
    @Body() dto: CreateWebhookDto,
    @Req() req: object,
  ): Promise<WebhookWithSecretResponse> {
    const created = await this.webhooks.create(
      ctx,
      { url: dto.url, subscribedEvents: dto.subscribed_events, description: dto.description },
      this.idempotency.commitWith(req, 201, presentWebhookWithSecret),
    );
    return presentWebhookWithSecret(created);
  }

  @Get()
  @ApiOperation({ operationId: 'listWebhooks', summary: 'List the project’s webhooks, oldest first' })
  @ApiOkResponse({ type: WebhookListResponse })
  async list(@CurrentContext() ctx: RequestContext): Promise<WebhookListResponse> {
    return { webhooks: (await this.webhooks.list(ctx)).map(presentWebhook) };
  }

  @Get(':id')
  @ApiOperation({ operationId: 'getWebhook', summary: 'Get one webhook' })
  @ApiOkResponse({ type: WebhookResponse })
  async get(@CurrentContext() ctx: RequestContext, @Param('id') id: string): Promise<WebhookResponse> {
    return presentWebhook(await this.webhooks.get(ctx, id));
  }

  @Patch(':id')
  @UseFilters(UrlRejectionAuditFilter)
  @ApiOperation({
    operationId: 'updateWebhook',
    summary: 'Change any of url, description, subscribed_events, enabled',
  })
  @ApiOkResponse({ type: WebhookResponse })
  async update(
    @CurrentContext() ctx: RequestContext,
    @Param('id') id: string,
    @Body() dto: UpdateWebhookDto,
  ): Promise<WebhookResponse> {
    const webhook = await this.webhooks.update(ctx, id, {
      url: dto.url,
      description: dto.description,
      subscribedEvents: dto.subscribed_events,
      enabled: dto.enabled,
    });
    return presentWebhook(webhook);
  }

  @Delete(':id')
  @NoBody()
  @ApiOperation({
    operationId: 'deleteWebhook',
    summary: 'Delete a webhook; its secrets are destroyed at once',
  })
  @ApiOkResponse({ type: OkResponse })
  async remove(@CurrentContext() ctx: RequestContext, @Param('id') id: string): Promise<OkResponse> {
    await this.webhooks.remove(ctx, id);
    return { ok: true };
  }

  @Post(':id/rotate-secret')
  @HttpCode(200)
  @Idempotent()
  @ApiOperation({
    operationId: 'rotateWebhookSecret',
    summary: 'Issue a new signing secret; the previous one keeps signing for the grace period',
  })
  @ApiOkResponse({ type: WebhookWithSecretResponse })
  async rotateSecret(
    @CurrentContext() ctx: RequestContext,
    @Param('id') id: string,
    @Body() dto: RotateSecretDto,
    @Req() req: object,
  ): Promise<WebhookWithSecretResponse> {
    const rotated = await this.webhooks.rotateSecret(
      ctx,
      id,
      { gracePeriodHours: dto.grace_period_hours },
      this.idempotency.commitWith(req, 200, presentWebhookWithSecret),
    );
    return presentWebhookWithSecret(rotated);
  }
}
