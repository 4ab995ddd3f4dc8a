/** A parsed HTTP response. */
export interface TestResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

/** Options of one request. */
export interface RequestOptions {
  key?: string;
  body?: unknown;
  /** Sent as is, without JSON encoding. */
  raw?: string | Buffer;
  headers?: Record<string, string>;
  /** Aborts the request (e.g. `AbortSignal.timeout(ms)`), so a request that is never answered fails the test. */
  signal?: AbortSignal;
}

/** A tiny HTTP client over fetch, speaking to a running service. */
export class HttpClient {
  constructor(readonly baseUrl: string) {}

  async request<T = any>(method: string, path: string, opts: RequestOptions = {}): Promise<TestResponse<T>> {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (opts.key !== undefined) headers['anchor-api-key'] = opts.key;
    let body: string | Buffer | undefined;
    if (opts.raw !== undefined) body = opts.raw;
    else if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['content-type'] ??= 'application/json';
    }
    const res = await fetch(`${this.baseUrl}${path}`, { method, headers, body, signal: opts.signal });
    const text = await res.text();
    let parsed: unknown = undefined;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: res.status, headers: res.headers, body: parsed as T, text };
  }

  get<T = any>(path: string, opts?: RequestOptions) {
    return this.request<T>('GET', path, opts);
  }
  post<T = any>(path: string, opts?: RequestOptions) {
    return this.request<T>('POST', path, opts);
  }
  patch<T = any>(path: string, opts?: RequestOptions) {
    return this.request<T>('PATCH', path, opts);
  }
  put<T = any>(path: string, opts?: RequestOptions) {
    return this.request<T>('PUT', path, opts);
  }
  delete<T = any>(path: string, opts?: RequestOptions) {
    return this.request<T>('DELETE', path, opts);
  }
}
