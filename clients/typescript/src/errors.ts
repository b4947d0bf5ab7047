/**
 * Typed errors: the google.rpc details a runctl server attaches to every failed call (an ErrorInfo,
 * and a BadRequest with a violation per bad field), decoded once so callers read fields, not bytes.
 */
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { BadRequestSchema, ErrorInfoSchema } from "./gen/google/rpc/error_details_pb.js";

/** What ErrorInfo says: `reason` names a runctl.v1.ErrorReason without its `ERROR_REASON_` prefix. */
export interface RunctlErrorInfo {
  /** e.g. "EXECUTION_NOT_FOUND"; "" when the server sent no ErrorInfo (a transport failure). */
  readonly reason: string;
  /** "runctl" for the server's own errors. */
  readonly domain: string;
  /** Machine-readable facts, e.g. `status` of a run that has already ended, `cursor` of a stream. */
  readonly metadata: Readonly<Record<string, string>>;
}

/** One bad field of a request (google.rpc.BadRequest.FieldViolation). */
export interface FieldViolation {
  /** The field's path in the request, e.g. "page_size". */
  readonly field: string;
  readonly description: string;
  readonly reason: string;
}

/**
 * A failed runctl call. It is a ConnectError (code, message, metadata, `findDetails`), so code written
 * for Connect keeps working, plus the decoded `reason`, `info` and `fieldViolations`.
 */
export class RunctlError extends ConnectError {
  /** ErrorInfo.reason, e.g. "EXECUTION_NOT_FOUND"; "" when there was none. */
  readonly reason: string;
  readonly info: RunctlErrorInfo;
  /** Every bad field, for INVALID_ARGUMENT; empty otherwise. */
  readonly fieldViolations: readonly FieldViolation[];

  constructor(error: ConnectError) {
    super(error.rawMessage, error.code, error.metadata, undefined, error.cause ?? error);
    // ConnectError recognises its own kind by name, so the name stays "ConnectError": that keeps
    // ConnectError.from(error) returning this error rather than wrapping it as Code.Unknown.
    this.details = error.details;
    this.isWireError = error.isWireError;
    const info = error.findDetails(ErrorInfoSchema)[0];
    this.info = { reason: info?.reason ?? "", domain: info?.domain ?? "", metadata: { ...info?.metadata } };
    this.reason = this.info.reason;
    this.fieldViolations = error
      .findDetails(BadRequestSchema)
      .flatMap((request) => request.fieldViolations)
      .map(({ field, description, reason }) => ({ field, description, reason }));
  }

  /** `reason` as a RunctlError: itself if it is one, else the ConnectError it stands for, decoded. */
  static override from(reason: unknown, code: Code = Code.Unknown): RunctlError {
    return reason instanceof RunctlError ? reason : new RunctlError(ConnectError.from(reason, code));
  }

  // ConnectError answers `instanceof` for anything shaped like a ConnectError; a RunctlError is
  // only what this class built.
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === "object" && value !== null && RunctlError.prototype.isPrototypeOf(value);
  }
}

async function* decoded<T>(messages: AsyncIterable<T>): AsyncIterable<T> {
  try {
    yield* messages;
  } catch (error) {
    throw RunctlError.from(error);
  }
}

/** Turns every failure of a call, unary or streaming, into a RunctlError. */
export const decodeErrors: Interceptor = (next) => async (request) => {
  try {
    const response = await next(request);
    return response.stream ? { ...response, message: decoded(response.message) } : response;
  } catch (error) {
    throw RunctlError.from(error);
  }
};
