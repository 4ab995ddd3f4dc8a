import { Body, Controller, Delete, Get, HttpCode, Param, Post, Put, Req, UseGuards } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiSecurity, ApiTags } from '@nestjs/swagger';
import { RotationService, type RequestContext } from '@app/domain';
import { ApiKeyGuard } from '../auth/api-key.guard';
import { CurrentContext } from '../auth/request-context.decorator';
import { Idempotent } from '../idempotency/idempotency.guard';
import { IdempotencyService } from '../idempotency/idempotency.service';
import { NoBody } from '../http/no-body.guard';
import { OkResponse, WebhookWithSecretResponse } from '../webhooks/dto/webhook.response';
import { presentWebhookWithSecret } from '../webhooks/webhook.presenter';
import {
  RevokedPreviousResponse,
  RotationPolicyResponse,
  SecretStatusResponse,
} from './dto/rotation.response';
import { SetRotationPolicyDto } from './dto/set-rotation-policy.dto';
import { presentRotationPolicy, presentSecretStatus } from './rotation.presenter';

/** Scheduled rotation (ext): policies, claiming the scheduled secret, secret status, ending a grace period. */
@ApiTags('rotation')
@ApiSecurity('anchor-api-key')
@Controller('v1')
@UseGuards(ApiKeyGuard)
export class RotationController {
  constructor(
    private readonly rotation: RotationService,
    private readonly idempotency: IdempotencyService,
  ) {}

  @Put('webhooks/:id/rotation-policy')
  @ApiOperation({
    operationId: 'setWebhookRotationPolicy',
    summary: 'Set the webhook’s own rotation policy (overrides the project default)',
  })
  @ApiOkResponse({ type: RotationPolicyResponse })
  async setWebhookPolicy(
    @CurrentContext() ctx: RequestContext,
    @Param('id') id: string,
    @Body() dto: SetRotationPolicyDto,
  ): Promise<RotationPolicyResponse> {
    return presentRotationPolicy(
      await this.rotation.setPolicy(ctx, id, {
        intervalDays: dto.interval_days,
        gracePeriodHours: dto.grace_period_hours,
      }),
    );
  }

  @Get('webhooks/:id/rotation-policy')
  @ApiOperation({ operationId: 'getWebhookRotationPolicy', summary: 'Get the webhook’s own rotation policy' })
  @ApiOkResponse({ type: RotationPolicyResponse })
  async getWebhookPolicy(
    @CurrentContext() ctx: RequestContext,
    @Param('id') id: string,
  ): Promise<RotationPolicyResponse> {
    return presentRotationPolicy(await this.rotation.getPolicy(ctx, id));
  }

  @Delete('webhooks/:id/rotation-policy')
  @NoBody()
  @ApiOperation({
    operationId: 'removeWebhookRotationPolicy',
    summary: 'Remove the webhook’s own policy (the project default applies again, if any)',
  })
  @ApiOkResponse({ type: OkResponse })
  async removeWebhookPolicy(
    @CurrentContext() ctx: RequestContext,
    @Param('id') id: string,
  ): Promise<OkResponse> {
    await this.rotation.removePolicy(ctx, id);
    return { ok: true };
  }

  @Put('rotation-policy')
  @ApiOperation({
    operationId: 'setProjectRotationPolicy',
    summary: 'Set the project default rotation policy, for webhooks without their own',
  })
  @ApiOkResponse({ type: RotationPolicyResponse })
  async setProjectPolicy(
    @CurrentContext() ctx: RequestContext,
    @Body() dto: SetRotationPolicyDto,
  ): Promise<RotationPolicyResponse> {
    return presentRotationPolicy(
      await this.rotation.setPolicy(ctx, null, {
        intervalDays: dto.interval_days,
        gracePeriodHours: dto.grace_period_hours,
      }),
    );
  }

  @Get('rotation-policy')
  @ApiOperation({
    operationId: 'getProjectRotationPolicy',
    summary: 'Get the project default rotation policy',
  })
  @ApiOkResponse({ type: RotationPolicyResponse })
  async getProjectPolicy(@CurrentContext() ctx: RequestContext): Promise<RotationPolicyResponse> {
    return presentRotationPolicy(await this.rotation.getPolicy(ctx, null));
  }

  @Delete('rotation-policy')
  @NoBody()
  @ApiOperation({
    operationId: 'removeProjectRotationPolicy',
    summary: 'Remove the project default rotation policy',
  })
  @ApiOkResponse({ type: OkResponse })
  async removeProjectPolicy(@CurrentContext() ctx: RequestContext): Promise<OkResponse> {
    await this.rotation.removePolicy(ctx, null);
    return { ok: true };
  }

  @Post('webhooks/:id/secret/claim')
  @NoBody()
  @HttpCode(200)
  @Idempotent()
  @ApiOperation({
    operationId: 'claimSecret',
    summary:
      'Fetch the secret of a scheduled rotation; answers once, then 409 (retry with the same Idempotency-Key to get the answer again)',
  })
  @ApiOkResponse({ type: WebhookWithSecretResponse })
  async claim(
    @CurrentContext() ctx: RequestContext,
    @Param('id') id: string,
    @Req() req: object,
  ): Promise<WebhookWithSecretResponse> {
    const claimed = await this.rotation.claim(
      ctx,
      id,
      this.idempotency.commitWith(req, 200, presentWebhookWithSecret),
    );
    return presentWebhookWithSecret(claimed);
  }

  @Get('webhooks/:id/secret-status')
  @ApiOperation({
    operationId: 'getSecretStatus',
    summary: 'Fingerprints and dates of the current and still-signing previous secrets',
  })
  @ApiOkResponse({ type: SecretStatusResponse })
  async status(
    @CurrentContext() ctx: RequestContext,
    @Param('id') id: string,
  ): Promise<SecretStatusResponse> {
    return presentSecretStatus(await this.rotation.status(ctx, id));
  }

  @Delete('webhooks/:id/previous-secrets')
  @NoBody()
  @ApiOperation({
    operationId: 'revokePreviousSecrets',
    summary: 'End the grace period now: previous secrets stop signing',
  })
  @ApiOkResponse({ type: RevokedPreviousResponse })
  async revokePrevious(
    @CurrentContext() ctx: RequestContext,
    @Param('id') id: string,
  ): Promise<RevokedPreviousResponse> {
    return { ok: true, revoked: await this.rotation.revokePrevious(ctx, id) };
  }
}
