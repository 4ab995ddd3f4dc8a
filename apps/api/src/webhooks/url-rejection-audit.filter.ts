import { Catch, Injectable, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { ValidationFailedError, WebhooksService } from '@app/domain';
import { checkWebhookUrl } from '@app/validation';
import type { AuthenticatedRequest } from '../auth/api-key.guard';
import { requestContextOf } from '../auth/request-context.decorator';
import { HttpErrorFilter } from '../http/http-error.filter';

const URL_RULE_FIELD = 'url';

/**
 * Records `webhook.url_rejected` when a create or update is refused by a URL rule, then answers exactly like
 * the global {@link HttpErrorFilter}. An exception filter rather than an interceptor: it costs nothing on the
 * requests that succeed (an interceptor wraps every request of its route in RxJS streams).
 */
@Injectable()
@Catch(ValidationFailedError)
export class UrlRejectionAuditFilter implements ExceptionFilter {
  private readonly errors = new HttpErrorFilter();

  constructor(private readonly webhooks: WebhooksService) {}

  catch(err: ValidationFailedError, host: ArgumentsHost): void {
    const req = host
      .switchToHttp()
      .getRequest<AuthenticatedRequest & { params: { id?: string }; body?: unknown }>();
    const urlDetails = err.details.filter((d) => d.field === URL_RULE_FIELD);
    const url = (req.body as { url?: unknown } | undefined)?.url;
    if (urlDetails.length === 0 || typeof url !== 'string' || !req.principal) {
      this.errors.catch(err, host);
      return;
    }
    const ctx = requestContextOf(req);
    void this.webhooks
      .recordUrlRejected(
        ctx,
        req.method === 'POST' ? 'create' : 'update',
        checkWebhookUrl(url).host,
        urlDetails.map((d) => d.rule),
        req.params.id ?? null,
      )
      .then(
        () => this.errors.catch(err, host),
        // Not recorded (Postgres away): the caller gets the error that Postgres being away means.
        (e: unknown) => this.errors.catch(e, host),
      );
  }
}
