// The console API (POST /console/api/{Service}/{Method}, runctl.v1 messages as proto JSON), called with
// the person's API key from this tab's session storage. The key goes in a header, never in a URL.

import { apiKey } from './session';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details: Array<Record<string, string>> = [],
  ) {
    super(message);
  }

  /** The reason word of the error body (e.g. NOT_PAUSED), if it has one. */
  get reason(): string {
    return this.details.find((detail) => detail.reason)?.reason ?? '';
  }

  /** The message with each field violation after it. */
  describe(): string {
    const fields = this.details
      .filter((detail) => detail.field)
      .map((detail) => `${detail.field}: ${detail.description}`);
    return [this.message, ...fields].join('; ');
  }
}

/** Call one runctl.v1 method. Rejects with an ApiError carrying the server's message. */
export async function rpc<T>(service: string, method: string, request: object = {}): Promise<T> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const key = apiKey();
  if (key) headers['x-api-key'] = key;
  let response: Response;
  try {
    response = await fetch(`/console/api/${service}/${method}`, {
      method: 'POST',
      headers,
      body: JSON.stringify(request),
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, 'runctl cannot be reached; is the server running?');
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new ApiError(response.status, body.error ?? `${response.status} ${response.statusText}`, body.details);
  }
  return body as T;
}
