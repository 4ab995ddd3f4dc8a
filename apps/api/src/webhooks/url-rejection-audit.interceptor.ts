import { Injectable, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import { catchError, from, mergeMap, type Observable } from 'rxjs';
import { ValidationFailedError, WebhooksService } from '@app/domain';
import { checkWebhookUrl } from '@app/validation';
import type { AuthenticatedRequest } from '../auth/api-key.guard';
import { requestContextOf } from '../auth/request-context.decorator';

const URL_RULE_FIELD = 'url';

/**
 * Records `webhook.url_rejected` when a create or update is refused by a URL rule. Validation runs in the
 * pipe, inside this interceptor's stream, so the refusal is seen here; the error itself is re-thrown as is.
 */
@Injectable()
export class UrlRejectionAuditInterceptor implements NestInterceptor {
  constructor(private readonly webhooks: WebhooksService) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const req = context
      .switchToHttp()
      .getRequest<AuthenticatedRequest & { params: { id?: string }; body?: unknown }>();
    return next.handle().pipe(
      catchError((err: unknown) => {
        const urlDetails =
          err instanceof ValidationFailedError ? err.details.filter((d) => d.field === URL_RULE_FIELD) : [];
        const url = (req.body as { url?: unknown } | undefined)?.url;
        if (urlDetails.length === 0 || typeof url !== 'string' || !req.principal) throw err;
        const host = checkWebhookUrl(url).host;
        const operation = req.method === 'POST' ? 'create' : 'update';
        return from(
          this.webhooks.recordUrlRejected(
            requestContextOf(req),
            operation,
            host,
            urlDetails.map((d) => d.rule),
            req.params.id ?? null,
          ),
        ).pipe(
          mergeMap(() => {
            throw err;
          }),
        );
      }),
    );
  }
}
