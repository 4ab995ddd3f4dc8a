import { Injectable, Logger, type BeforeApplicationShutdown } from '@nestjs/common';
import { createHash } from 'node:crypto';
import {
  Clock,
  type CommitWith,
  DomainError,
  IdempotencyKeyReusedError,
  SecretCipher,
  ValidationFailedError,
  WebhookNotFoundError,
  fingerprint,
  idempotentResponseAad,
} from '@app/domain';
import { Database, type Repositories } from '@app/persistence';
import { withTimeout } from '@app/queue';
import type { AuthenticatedRequest } from '../auth/api-key.guard';
import { MetricsService } from '../observability/metrics.service';
import { requestContextOf } from '../auth/request-context.decorator';

const TTL_MS = 24 * 3600_000;
// A pending claim older than this belongs to a process that died mid-request: a retry may take it over.
const STALE_PENDING_MS = 60_000;
// A duplicate that arrives while the first request still runs waits this long for its response.
const WAIT_FOR_FIRST_MS = 10_000;
// How often such a duplicate looks again: soon at first (most requests take milliseconds), then less and less
// often, so that many duplicates of one slow request do not load Postgres with lookups.
const FIRST_POLL_MS = 25;
const MAX_POLL_MS = 500;
// The Retry-After of a 409 for a key that is only busy: its first request may finish any moment (or, if its
// process died, a retry takes the claim over once it is STALE_PENDING_MS old).
const IN_PROGRESS_RETRY_AFTER_SECONDS = 5;
// Keys given back in the background at most at a time; beyond, a key is left to turn stale.
const MAX_RELEASING = 1000;
/**
 * How long a failed request's answer waits for its key to be given back: a client that retries at once then finds
 * the key free (with another body too), while a Postgres that hangs holds the answer no longer than this.
 */
const RELEASE_WAIT_MS = 1000;
/** What an `Idempotency-Key` may be: 1 to 255 printable ASCII characters, no space. */
export const KEY_FORMAT = /^[\x21-\x7e]{1,255}$/;
/** What {@link KEY_FORMAT} asks for, as a refused key is told. */
const KEY_FORMAT_RULE = 'must be 1 to 255 printable ASCII characters without spaces';
/** Why a stored first response is not replayed once its webhook is deleted. */
const WEBHOOK_DELETED = 'the webhook of the first request with this Idempotency-Key has since been deleted';
/** Why a stored first response that handed out a secret is not replayed once that secret is gone. */
const RETIRED_SECRET =
  'the secret in the first response to this Idempotency-Key has since been retired and is not given out ' +
  'again; send the request with a new key';

/**
 * Thrown by the guard to answer with the stored first response instead of running the route; the API's
 * exception filter sends it (a guard cannot answer by itself). Not an error the caller sees.
 */
export class IdempotentReplay extends Error {
  constructor(
    readonly status: number,
    /** The first response's JSON body, as sent. */
    readonly body: string,
  ) {
    super('idempotent replay');
  }
}

/** A key this request has claimed: its response is stored (success) or the key given back (failure). */
interface Claim {
  projectId: string;
  key: string;
  /** When this request claimed the key: a retry that takes a stale claim over claims it at a later time. */
  claimedAt: Date;
  requestId: string | null;
  aad: string;
  /** The response was stored in the transaction of the change, which has committed. */
  stored?: boolean;
}

/**
 * `Idempotency-Key` for POST routes: the same key, body and project within 24 hours returns the first
 * response again (status and body) without running the request twice; the same key with another request is
 * 409 `idempotency_key_reused`.
 *
 * Around the route: {@link begin} runs in a guard, after authentication and before the body is validated;
 * {@link commitWith} goes with the route's use case into the transaction of its change; and {@link finish} runs
 * in the HTTP server's send hook, with the status and body that go out. None of them
 * is a Nest interceptor, which would wrap every request of its route, with the header or without, in RxJS
 * streams (about a fifth of the API's CPU per create).
 *
 * The key is claimed in Postgres before the handler runs (insert-first on the primary key), so concurrent
 * duplicates never both execute: the later one waits for the first response. A route whose use case takes a
 * {@link CommitWith} ({@link commitWith}) stores its response in the transaction of the change itself, so a
 * process that dies (or a Postgres that goes away) right after the change commits cannot leave the key
 * without its response, to be run a second time by a retry. The stored response may hold a webhook secret
 * (create, rotate), so it is sealed with the secrets key ring (AES-256-GCM, bound to project and key). A
 * request that fails gives its key back, so a retry runs it again; only successes are replayed.
 */
@Injectable()
export class IdempotencyService implements BeforeApplicationShutdown {
  private readonly logger = new Logger('Idempotency');
  private readonly claims = new WeakMap<object, Claim>();
  /** Timers of keys being given back in the background ({@link releaseLater}). */
  private readonly releasing = new Set<NodeJS.Timeout>();
  private stopping = false;

  constructor(
    private readonly db: Database,
    private readonly cipher: SecretCipher,
    private readonly clock: Clock,
    private readonly metrics: MetricsService,
  ) {}

  /**
   * Claims the request's key, or throws: {@link IdempotentReplay} when the key already has a response,
   * `idempotency_key_reused` when it was used with another request (or its first request is still running
   * after a wait). Does nothing for a request without the header.
   */
  async begin(req: AuthenticatedRequest): Promise<void> {
    const header = req.headers['idempotency-key'];
    if (header === undefined) return;
    const ctx = requestContextOf(req);
    const key = typeof header === 'string' ? header : '';
    if (!KEY_FORMAT.test(key)) {
      throw new ValidationFailedError(`Idempotency-Key ${KEY_FORMAT_RULE}`, [
        { field: 'Idempotency-Key', rule: 'format', message: KEY_FORMAT_RULE },
      ]);
    }
    const requestHash = hashRequest(req);
    const repo = this.db.repos.idempotencyKeys;
    const aad = idempotentResponseAad(ctx.projectId, key);
    const deadline = Date.now() + WAIT_FOR_FIRST_MS;
    let now: Date;
    let pollMs = FIRST_POLL_MS;
    for (;;) {
      now = this.clock.now();
      let claimed: boolean;
      try {
        claimed = await repo.claim({
          projectId: ctx.projectId,
          key,
          requestHash,
          now,
          expiresAt: new Date(now.getTime() + TTL_MS),
          staleBefore: new Date(now.getTime() - STALE_PENDING_MS),
        });
      } catch (e) {
        // No answer: the claim may have committed all the same (its answer lost with the connection). The claim
        // time is this request's own, so giving back a claim made at that time can only give back this one, and
        // a retry does not wait for it to turn stale.
        this.releaseLater({ projectId: ctx.projectId, key, claimedAt: now, requestId: ctx.requestId, aad });
        throw e;
      }
      if (claimed) break;
      const record = await repo.find(ctx.projectId, key);
      if (!record) continue; // released or purged in between: claim again
      if (record.requestHash !== requestHash && record.requestHash !== legacyEmptyHash(req)) {
        this.metrics.countIdempotent('reused');
        throw new IdempotencyKeyReusedError();
      }
      if (record.state === 'done' && record.response === null) {
        // Its response held a webhook secret that has since been destroyed, and was emptied with it.
        this.metrics.countIdempotent('replay_refused');
        if (
          record.webhookId !== null &&
          !(await this.db.repos.webhooks.findLive(ctx.projectId, record.webhookId))
        )
          throw new WebhookNotFoundError(WEBHOOK_DELETED);
        throw new IdempotencyKeyReusedError(RETIRED_SECRET);
      }
      if (record.state === 'done' && record.response && record.keyId && record.status) {
        const body = this.cipher.open({ keyId: record.keyId, ciphertext: record.response }, aad);
        try {
          await this.assertReplayable(req, ctx.projectId, body);
        } catch (e) {
          if (e instanceof DomainError) this.metrics.countIdempotent('replay_refused');
          throw e;
        }
        this.metrics.countIdempotent('replayed');
        throw new IdempotentReplay(record.status, body);
      }
      if (Date.now() > deadline) {
        this.metrics.countIdempotent('in_progress');
        throw new IdempotencyKeyReusedError(
          'a request with this Idempotency-Key is still in progress; retry shortly',
          IN_PROGRESS_RETRY_AFTER_SECONDS,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, pollMs));
      pollMs = Math.min(pollMs * 2, MAX_POLL_MS);
    }
    this.metrics.countIdempotent('first');
    this.claims.set(req, { projectId: ctx.projectId, key, claimedAt: now, requestId: ctx.requestId, aad });
  }

  /**
   * A first response is replayed only while what it speaks of still exists: the replay of a request on a
   * webhook (its path's id, or the id a create returned) that has since been deleted is 404, like the same
   * request without the key. And one that handed out a secret (create, rotate-secret) is replayed only while
   * that secret is live: one destroyed since (a later rotation's grace period over, previous secrets revoked)
   * is never given out again, from this copy either.
   */
  private async assertReplayable(req: AuthenticatedRequest, projectId: string, body: string): Promise<void> {
    let first: { id?: unknown; secret?: unknown } = {};
    try {
      first = (JSON.parse(body) ?? {}) as typeof first;
    } catch {
      // Not JSON: nothing to check in it; the path still is.
    }
    const fromPath = (req.params as { id?: unknown } | undefined)?.id;
    const webhookId =
      typeof fromPath === 'string' ? fromPath : typeof first.id === 'string' ? first.id : undefined;
    if (webhookId === undefined) return;
    const repos = this.db.repos;
    if (!(await repos.webhooks.findLive(projectId, webhookId))) {
      throw new WebhookNotFoundError(WEBHOOK_DELETED);
    }
    if (typeof first.secret !== 'string') return;
    const fp = fingerprint(first.secret);
    const live = await repos.secrets.findValid(webhookId, this.clock.now());
    if (!live.some((s) => s.fingerprint === fp)) {
      // Deleting a webhook destroys its secrets: one deleted since the check above is said as such.
      if (!(await repos.webhooks.findLive(projectId, webhookId)))
        throw new WebhookNotFoundError(WEBHOOK_DELETED);
      throw new IdempotencyKeyReusedError(RETIRED_SECRET);
    }
  }

  /**
   * For a request that has claimed a key: work for its use case to commit with the change, which stores the
   * response the route will send, `status` and `present(result)` as JSON, in the change's transaction.
   * Undefined for a request without a key (its change commits on its own, as always).
   */
  commitWith<T>(req: object, status: number, present: (result: T) => unknown): CommitWith<T> | undefined {
    const claim = this.claims.get(req);
    if (!claim) return undefined;
    return async (tx, result) => {
      const stored = await this.store(tx, claim, status, JSON.stringify(present(result)));
      // This request ran so long that a retry took its claim over (and runs, or ran, the change itself): this
      // change rolls back, so the key still stands for one change.
      if (!stored) {
        this.metrics.countIdempotent('taken_over');
        throw new IdempotencyKeyReusedError(
          'a retry with this Idempotency-Key took this request over while it ran; nothing was changed by this one',
          IN_PROGRESS_RETRY_AFTER_SECONDS,
        );
      }
      tx.afterCommit(() => (claim.stored = true));
    };
  }

  /** Seals a response and stores it onto the claim, if the claim is still this request's; returns whether it was. */
  private store(repos: Repositories, claim: Claim, status: number, body: string): Promise<boolean> {
    const sealed = this.cipher.seal(body, claim.aad);
    return repos.idempotencyKeys.complete({
      projectId: claim.projectId,
      key: claim.key,
      claimedAt: claim.claimedAt,
      status,
      keyId: sealed.keyId,
      response: sealed.ciphertext,
      secret: secretOf(body),
    });
  }

  /** Whether the request has claimed a key that {@link finish} has yet to settle. */
  holdsClaim(req: object): boolean {
    return this.claims.has(req);
  }

  /**
   * Settles the key a request claimed, as its response goes out: nothing more when the response was stored with
   * the change ({@link commitWith}); otherwise stores it (a success, awaited, so that a replay never misses it),
   * or gives the key back (a failure, or a body that is not JSON text). A failure's response waits for that for
   * at most {@link RELEASE_WAIT_MS} (a 503's not at all: Postgres most likely does not answer), then it goes on in
   * the background. Never throws: the change is done either way, and the caller gets its response.
   */
  async finish(req: object, status: number, body: string | null): Promise<void> {
    const claim = this.claims.get(req);
    if (!claim) return;
    this.claims.delete(req);
    // Stored with the change: whatever goes out now (even an error after the commit), a retry replays that.
    if (claim.stored) return;
    if (status < 200 || status >= 300 || body === null) {
      // A 503 is Postgres (or Redis) not answering: giving the key back now would most likely wait on it as well.
      if (status === 503) {
        this.releaseLater(claim);
        return;
      }
      const released = this.release(claim).catch((e: Error) => {
        this.logger.warn(
          { request_id: claim.requestId, reason: e.message },
          'cannot give the idempotency key back; trying again',
        );
        this.releaseLater(claim);
      });
      // Past the wait the answer goes out, and the release goes on by itself.
      await withTimeout(released, RELEASE_WAIT_MS, () => new Error('release still running')).catch(
        () => undefined,
      );
      return;
    }
    try {
      await this.store(this.db.repos, claim, status, body);
    } catch (e) {
      // The claim turns stale after STALE_PENDING_MS, and a retry after that runs again.
      this.logger.warn(
        { request_id: claim.requestId, reason: (e as Error).message },
        'cannot store idempotent response',
      );
    }
  }

  /** Stops giving keys back in the background: the pool is about to close (a claim left turns stale). */
  beforeApplicationShutdown(): void {
    this.stopping = true;
    for (const timer of this.releasing) clearTimeout(timer);
    this.releasing.clear();
  }

  private release(claim: Claim): Promise<void> {
    return this.db.repos.idempotencyKeys.release(claim.projectId, claim.key, claim.claimedAt);
  }

  /**
   * Gives a failed request's key back once Postgres answers again. The request most likely failed because
   * Postgres did not answer, and so would the release: left alone, the claim would hold the key until it turns
   * stale, and every retry until then would wait and get 409 although nothing ran. Tries with backoff from half
   * a second up to 5 s, for as long as the claim would take to turn stale (after that a retry takes it over);
   * not while the process stops, and for at most {@link MAX_RELEASING} keys at a time.
   */
  private releaseLater(claim: Claim): void {
    if (this.stopping || this.releasing.size >= MAX_RELEASING) return;
    const giveUpAt = Date.now() + STALE_PENDING_MS;
    const attempt = (delayMs: number) => {
      const timer = setTimeout(() => {
        this.releasing.delete(timer);
        if (this.stopping) return;
        this.release(claim).then(
          () => this.logger.log({ request_id: claim.requestId }, 'idempotency key given back'),
          () => {
            if (Date.now() + delayMs < giveUpAt) attempt(Math.min(delayMs * 2, 5000));
          },
        );
      }, delayMs);
      timer.unref(); // never what keeps a stopping process alive
      this.releasing.add(timer);
    };
    attempt(500);
  }
}

/** The webhook secret a response body (create, rotate-secret: the webhook with its secret) hands out, or null. */
function secretOf(body: string): { webhookId: string; fingerprint: string } | null {
  try {
    const parsed = JSON.parse(body) as { id?: unknown; secret?: unknown } | null;
    if (typeof parsed?.secret !== 'string' || typeof parsed.id !== 'string') return null;
    return { webhookId: parsed.id, fingerprint: fingerprint(parsed.secret) };
  } catch {
    return null;
  }
}

/**
 * Same method, path and JSON body (key order ignored) → same hash. No body counts as `{}`: both are a request
 * without fields (rotate-secret takes either), and a client may send one the first time and the other on retry.
 */
function hashRequest(req: AuthenticatedRequest): string {
  return createHash('sha256')
    .update(`${req.method} ${routedPath(req)}\n${canonicalJson(req.body ?? {})}`)
    .digest('hex');
}

/**
 * The path as the route reads it: its pattern with the path's parameters (decoded, then percent-encoded again
 * where they must be). A path spelled another way that reaches the same route and webhook (percent-encoded
 * letters, an absolute-form request target) is the same request; a plain path is itself.
 */
function routedPath(req: AuthenticatedRequest): string {
  const pattern = req.routeOptions.url;
  if (pattern === undefined) return req.url.split('?')[0];
  const params = req.params as Record<string, string | undefined>;
  return pattern.replace(/:(\w+)/g, (param, name: string) => {
    const value = params[name];
    return value === undefined ? param : encodeURIComponent(value);
  });
}

/**
 * For a request without fields, the hash its twin without a body had before no body counted as `{}` (keys stored
 * up to 24 hours before that change still replay).
 */
function legacyEmptyHash(req: AuthenticatedRequest): string | undefined {
  const body: unknown = req.body;
  const empty =
    body === undefined ||
    body === null ||
    (typeof body === 'object' && !Array.isArray(body) && Object.keys(body).length === 0);
  if (!empty) return undefined;
  return createHash('sha256')
    .update(`${req.method} ${routedPath(req)}\nnull`)
    .digest('hex');
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
