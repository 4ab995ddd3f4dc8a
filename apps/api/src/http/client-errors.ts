import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ErrorCode } from '@app/domain';
import { STATUS_BY_CODE, formErrorBody, type ErrorBody } from './error-response';
import { requestIdFor } from './request-id';

/**
 * The response of the latest request whose head Node has read on each connection. Kept while the connection
 * lives (one request and response per open connection), so that an error on the connection can tell whether
 * the request it interrupts has had its answer already.
 */
const latestResponse = new WeakMap<Socket, ServerResponse>();

/** Connections closing once the answer in flight has gone out (see {@link answerClientError}). */
const closingAfterAnswer = new WeakSet<Socket>();

/** An answer the HTTP server gave by itself, before any route or hook could see the request. */
export interface ConnectionAnswer {
  status: number;
  code: ErrorCode;
  requestId: string;
  /** The request's method, when its head was read. */
  method: string | undefined;
  /** The request's path and query as sent, when its head was read (log it through `loggableUrl`). */
  url: string | undefined;
}

/** Counts and logs the connection-level answers of one server (see {@link watchConnections}). */
export type ConnectionAnswerObserver = (answer: ConnectionAnswer) => void;

/** The observer of the server each connection belongs to: processes running several servers keep them apart. */
const observerOf = new WeakMap<Socket, ConnectionAnswerObserver>();

/**
 * Wires the connection-level answers onto the API's HTTP server: see {@link answerClientError}, and
 * {@link answerUnmetExpectation}. `observe` hears of every such answer, which no request hook sees.
 */
export function watchConnections(server: Server, observe: ConnectionAnswerObserver): void {
  server.on('connection', (socket: Socket) => observerOf.set(socket, observe));
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    latestResponse.set(req.socket, res);
  });
  server.on('checkExpectation', answerUnmetExpectation);
  server.on('connect', answerConnect);
}

function observed(socket: Socket, answer: ConnectionAnswer): void {
  observerOf.get(socket)?.(answer);
}

/**
 * CONNECT asks for a tunnel, and this service is no proxy: no route answers it, 404 `not_found` in the documented
 * error body with the request id, whatever the target (Node hands the connection over at once, so there is no key
 * check first as on other `/v1` requests); the connection is closed and nothing sent after the head is read.
 * Without this listener Node would close the connection without a word.
 */
function answerConnect(req: IncomingMessage, socket: Socket): void {
  // Node no longer watches this socket: an error on it (a reset) must not go unhandled.
  socket.on('error', () => undefined);
  if (!socket.writable) return void socket.destroy();
  const requestId = requestIdFor(req);
  writeErrorResponse(socket, 'not_found', `no route CONNECT ${req.url ?? ''}`, requestId);
  observed(socket, {
    status: STATUS_BY_CODE.not_found,
    code: 'not_found',
    requestId,
    method: req.method,
    url: req.url,
  });
  socket.destroySoon();
}

/**
 * An `Expect` header other than `100-continue` (which Node meets itself): 417 in the documented error body, with
 * the request id, and the connection closed (the body the client holds back or sends anyway is never read).
 * Node emits this instead of a request, so no route and no hook sees it.
 */
function answerUnmetExpectation(req: IncomingMessage, res: ServerResponse): void {
  latestResponse.set(req.socket, res);
  const requestId = requestIdFor(req);
  const body = errorBodyText('expectation_failed', 'only "Expect: 100-continue" can be met', requestId);
  res.writeHead(STATUS_BY_CODE.expectation_failed, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'x-request-id': requestId,
    'x-content-type-options': 'nosniff',
    // As on every /v1 answer (this one may answer a /v1 request: no route has seen it).
    'cache-control': 'no-store',
    connection: 'close',
  });
  res.end(body);
  observed(req.socket, {
    status: STATUS_BY_CODE.expectation_failed,
    code: 'expectation_failed',
    requestId,
    method: req.method,
    url: req.url,
  });
}

/** The documented error body, as sent; a form error names the request as its field. */
function errorBodyText(code: ErrorCode, message: string, requestId: string): string {
  return JSON.stringify(
    code === 'validation_failed'
      ? formErrorBody('request', message, requestId)
      : ({ error: message, code, request_id: requestId } satisfies ErrorBody),
  );
}

/** Writes a whole error response straight onto `socket`, asking the client to close the connection. */
function writeErrorResponse(socket: Socket, code: ErrorCode, message: string, requestId: string): void {
  const status = STATUS_BY_CODE[code];
  const body = errorBodyText(code, message, requestId);
  socket.write(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nx-request-id: ${requestId}\r\n` +
      `X-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${body}`,
  );
}

/**
 * Requests that are not valid HTTP (a garbage request line, a non-numeric Content-Length, headers over Node's
 * 16 KiB limit, a request not received in time) never reach Fastify's routing: Node reports them on the socket.
 * They are answered in the documented error body too, and the connection is closed; the request id is the
 * interrupted request's own when its head was read (a stalled or broken body), else a new one.
 * Nothing is written when the interrupted request already has (part of) its answer: a 401 sent before a body
 * that then stalls is that request's one answer, and a second one would be read as the answer to another.
 *
 * When the bytes that are not HTTP follow a request received whole (a pipelining client, a stray byte after
 * `Connection: close`), that request's answer still goes out, marked `Connection: close`, and the connection
 * closes after it; the garbage gets no answer. Answering the garbage instead would cut off the answer of a
 * request that is carried out all the same: a create's one-time secret would be lost, and a retry would create
 * a second webhook. Node reports every further chunk on the connection again: they change nothing, except that
 * a request timeout then (an answer still not out after it) closes the connection at once.
 */
export function answerClientError(error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  if (closingAfterAnswer.has(socket)) {
    if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') socket.destroy(error);
    return;
  }
  const latest = latestResponse.get(socket);
  if (latest !== undefined && latest.req.complete && !latest.writableFinished) {
    closingAfterAnswer.add(socket);
    // Before its head is written, the answer itself says so (and Node then closes the connection after it).
    if (!latest.headersSent) latest.shouldKeepAlive = false;
    latest.once('finish', () => socket.destroySoon());
    return;
  }
  const [code, message]: [ErrorCode, string] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? ['request_headers_too_large', 'the request headers are larger than 16 KiB']
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? ['request_timeout', 'the request was not received in time']
        : ['validation_failed', 'the request is not valid HTTP/1.1'];
  const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  const answered =
    inFlight?.headersSent || (latest !== undefined && !latest.req.complete && latest.headersSent);
  // The request id is the interrupted request's own when its head was read (its caller's, when sane).
  const interrupted = latest !== undefined && !latest.req.complete ? latest.req : undefined;
  const requestId = interrupted !== undefined ? requestIdFor(interrupted) : randomUUID();
  if (socket.writable && !answered) {
    writeErrorResponse(socket, code, message, requestId);
    // A client that ended its side in the middle of a body it had started: the request is Fastify's, whose error
    // filter logs it (its body stream fails) as a client that went away, not as an answer here. No answer reaches
    // the client, so it is not counted in http_requests_total either.
    if (error.code !== 'HPE_INVALID_EOF_STATE' || interrupted === undefined)
      observed(socket, {
        status: STATUS_BY_CODE[code],
        code,
        requestId,
        method: interrupted?.method,
        url: interrupted?.url,
      });
  }
  socket.destroy(error);
}
