// Node client of Satchel: the same shape as the Python client (satchel.Client).
//
//   const client = new SatchelClient("127.0.0.1:50051", { apiKey: process.env.SATCHEL_API_KEY });
//   const token = await client.issueToken("p1", ["read", "write"], { ttlSeconds: 1800 });
//   const put = await client.presign("p1", "saves/slot1.dat", "PUT", { contentLength: 1024 });
//   const [a, b] = await client.presignMany("p1", [{ key: "a.png" }, { key: "b.png" }]);
//
// The API comes from protos/ at run time (@grpc/proto-loader), the one source of truth.
// Failures reject with a SatchelError carrying the gRPC status, the fields that broke a
// rule (google.rpc.BadRequest) and the server's retry delay (google.rpc.RetryInfo).

import { inspect } from "node:util";
import { fileURLToPath } from "node:url";

import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";

export type Permission = "read" | "write" | "list" | "delete";
export type Method = "GET" | "PUT" | "HEAD" | "DELETE" | "POST";

/** Where the player's files live: bucket, region, endpoint URL and the player's prefix. */
export interface StorageLocation {
  readonly bucket: string;
  readonly region: string;
  readonly endpoint: string;
  readonly prefix: string;
}

/** Temporary STS credentials. Secret: `console.log` and `util.inspect` hide them. */
export class Credentials {
  readonly accessKeyId: string;
  readonly accessKeySecret: string;
  readonly securityToken: string;
  readonly expiration: Date;

  constructor(accessKeyId: string, accessKeySecret: string, securityToken: string, expiration: Date) {
    this.accessKeyId = accessKeyId;
    this.accessKeySecret = accessKeySecret;
    this.securityToken = securityToken;
    this.expiration = expiration;
  }

  [inspect.custom](): string {
    return `Credentials { accessKeyId: '${this.accessKeyId}', expiration: ${this.expiration.toISOString()} }`;
  }
}

export interface Token {
  readonly credentials: Credentials;
  readonly location: StorageLocation;
  /** The permissions the credentials carry, sorted. */
  readonly permissions: readonly Permission[];
}

/** A presigned URL or POST form. It carries a signature: `util.inspect` hides the URL and form. */
export class Presigned {
  readonly url: string;
  readonly method: Method;
  /** Headers to send exactly as given: they are signed. */
  readonly headers: Readonly<Record<string, string>>;
  /** POST only: the form fields to send before the "file" field. */
  readonly formFields: Readonly<Record<string, string>>;
  /** When the URL or form stops working (may be earlier than asked). */
  readonly expiration: Date;
  /** The full object key in the bucket (prefix + key). */
  readonly key: string;
  readonly location: StorageLocation;

  constructor(fields: Omit<Presigned, typeof inspect.custom>) {
    this.url = fields.url;
    this.method = fields.method;
    this.headers = fields.headers;
    this.formFields = fields.formFields;
    this.expiration = fields.expiration;
    this.key = fields.key;
    this.location = fields.location;
  }

  [inspect.custom](): string {
    return `Presigned { method: '${this.method}', key: '${this.key}', expiration: ${this.expiration.toISOString()} }`;
  }
}

export interface FieldViolation {
  readonly field: string;
  readonly description: string;
}

/** A failed call: `code` is the gRPC status (grpc.status), `codeName` its name. */
export class SatchelError extends Error {
  readonly code: grpc.status;
  readonly codeName: string;
  readonly fieldViolations: readonly FieldViolation[];
  /** How long to wait before the same call can succeed, when the server said. */
  readonly retryDelayMs: number | undefined;

  constructor(code: grpc.status, message: string, fieldViolations: readonly FieldViolation[] = [], retryDelayMs?: number) {
    super(`${grpc.status[code]}: ${message}`);
    this.name = "SatchelError";
    this.code = code;
    this.codeName = grpc.status[code] ?? "UNKNOWN";
    this.fieldViolations = fieldViolations;
    this.retryDelayMs = retryDelayMs;
  }
}

export interface Tls {
  /** PEM roots that sign the server's certificate (default: the system's). */
  readonly ca?: Buffer;
  /** PEM client certificate chain and key, for mutual TLS. */
  readonly cert?: Buffer;
  readonly key?: Buffer;
}

export interface ClientOptions {
  /** Sent as `authorization: Bearer <key>` on every call. */
  readonly apiKey?: string;
  /** TLS settings; plaintext without them. */
  readonly tls?: Tls;
  /** The deadline of each call, in milliseconds (default 5000). */
  readonly timeoutMs?: number;
  /** The directory holding satchel/v1/token_service.proto (default: this repository's protos/). */
  readonly protoRoot?: string;
}

export interface IssueTokenOptions {
  /** A configured scope's name; empty: the server's default scope. */
  readonly scope?: string;
  /** Requested lifetime; unset: the scope's default. */
  readonly ttlSeconds?: number;
}

export interface PresignOptions {
  readonly scope?: string;
  readonly expiresInSeconds?: number;
  /** PUT and POST: the Content-Type the upload must carry. */
  readonly contentType?: string;
  /** POST: the largest upload the form accepts, in bytes (0: the scope's default). */
  readonly maxSize?: number;
  /** PUT and POST: refuse to replace an existing object. */
  readonly forbidOverwrite?: boolean;
  /** PUT, required: the body's exact size in bytes; the URL signs it. */
  readonly contentLength?: number;
}

/** One object to presign in `presignMany`: its key, method and `presign`'s per-object options. */
export interface PresignItem extends Omit<PresignOptions, "scope"> {
  readonly key: string;
  /** Default GET. */
  readonly method?: Method;
}

/** One item's answer in `presignMany`: its URL or form, or the error it was refused with. */
export type PresignOutcome = Presigned | SatchelError;

const DEFAULT_PROTO_ROOT = fileURLToPath(new URL("../../../protos/", import.meta.url));
const PROTO_FILE = "satchel/v1/token_service.proto";
const STATUS_DETAILS_KEY = "grpc-status-details-bin";

const PERMISSION_PREFIX = "PERMISSION_";
const METHOD_PREFIX = "HTTP_METHOD_";

// google.rpc.Status and the two details Satchel sends (google/rpc/status.proto and
// error_details.proto): field numbers as published, only the fields read here.
const RPC_DETAILS = protobuf.parse(`
  syntax = "proto3";
  package google.rpc;
  message Any { string type_url = 1; bytes value = 2; }
  message Status { int32 code = 1; string message = 2; repeated Any details = 3; }
  message Duration { int64 seconds = 1; int32 nanos = 2; }
  message RetryInfo { Duration retry_delay = 1; }
  message FieldViolation { string field = 1; string description = 2; }
  message BadRequest { repeated FieldViolation field_violations = 1; }
`).root;
const StatusType = RPC_DETAILS.lookupType("google.rpc.Status");
const BadRequestType = RPC_DETAILS.lookupType("google.rpc.BadRequest");
const RetryInfoType = RPC_DETAILS.lookupType("google.rpc.RetryInfo");

interface WireTimestamp {
  seconds: string;
  nanos: number;
}

interface WireLocation {
  bucket: string;
  region: string;
  endpoint: string;
  prefix: string;
}

interface WireIssueTokenResponse {
  credentials: { accessKeyId: string; accessKeySecret: string; securityToken: string; expiration: WireTimestamp };
  location: WireLocation;
  permissions: string[];
}

interface WireStatus {
  code: number;
  message: string;
  // google.protobuf.Any: proto-loader's built-in definition keeps the field's proto name
  // (type_url); the one parsed here for the trailer is camel-cased like the rest.
  details?: { typeUrl?: string; type_url?: string; value: Uint8Array }[];
}

interface WirePresignObjectsResponse {
  results: { outcome: "presigned" | "error"; presigned?: WirePresignObjectResponse; error?: WireStatus }[];
}

interface WirePresignObjectResponse {
  url: string;
  method: string;
  headers: Record<string, string>;
  formFields: Record<string, string>;
  expiration: WireTimestamp;
  key: string;
  location: WireLocation;
}

type Unary<Req, Res> = (
  request: Req,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, response?: Res) => void,
) => grpc.ClientUnaryCall;

interface TokenServiceStub extends grpc.Client {
  IssueToken: Unary<object, WireIssueTokenResponse>;
  PresignObject: Unary<object, WirePresignObjectResponse>;
  PresignObjects: Unary<object, WirePresignObjectsResponse>;
}

type StubConstructor = new (target: string, credentials: grpc.ChannelCredentials) => TokenServiceStub;

function loadStub(protoRoot: string): StubConstructor {
  const definition = protoLoader.loadSync(PROTO_FILE, {
    includeDirs: [protoRoot],
    keepCase: false,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    satchel: { v1: { TokenService: StubConstructor } };
  };
  return loaded.satchel.v1.TokenService;
}

function toDate(timestamp: WireTimestamp): Date {
  return new Date(Number(timestamp.seconds) * 1000 + Math.floor(timestamp.nanos / 1e6));
}

function toDuration(seconds: number | undefined): { seconds: number; nanos: number } | undefined {
  if (seconds === undefined) return undefined;
  const whole = Math.floor(seconds);
  return { seconds: whole, nanos: Math.round((seconds - whole) * 1e9) };
}

function toLocation(wire: WireLocation): StorageLocation {
  return { bucket: wire.bucket, region: wire.region, endpoint: wire.endpoint, prefix: wire.prefix };
}

/** A SatchelError from a google.rpc.Status: code, message, BadRequest and RetryInfo details. */
function errorFromStatus(code: grpc.status, message: string, status: WireStatus | undefined): SatchelError {
  const violations: FieldViolation[] = [];
  let retryDelayMs: number | undefined;
  for (const detail of status?.details ?? []) {
    const typeUrl = detail.typeUrl ?? detail.type_url ?? "";
    if (typeUrl.endsWith("/google.rpc.BadRequest")) {
      const bad = BadRequestType.toObject(BadRequestType.decode(detail.value)) as {
        fieldViolations?: FieldViolation[];
      };
      for (const v of bad.fieldViolations ?? []) {
        violations.push({ field: v.field ?? "", description: v.description ?? "" });
      }
    } else if (typeUrl.endsWith("/google.rpc.RetryInfo")) {
      const info = RetryInfoType.toObject(RetryInfoType.decode(detail.value), { longs: Number }) as {
        retryDelay?: { seconds?: number; nanos?: number };
      };
      const delay = info.retryDelay ?? {};
      retryDelayMs = (delay.seconds ?? 0) * 1000 + (delay.nanos ?? 0) / 1e6;
    }
  }
  return new SatchelError(code, message, violations, retryDelayMs);
}

/** The SatchelError for a failed call, with the details the server put in its trailer. */
export function errorFrom(error: grpc.ServiceError): SatchelError {
  const [raw] = error.metadata?.get(STATUS_DETAILS_KEY) ?? [];
  const status =
    raw instanceof Buffer ? (StatusType.toObject(StatusType.decode(raw), { longs: Number }) as WireStatus) : undefined;
  return errorFromStatus(error.code, error.details, status);
}

function toPresigned(response: WirePresignObjectResponse): Presigned {
  return new Presigned({
    url: response.url,
    method: response.method.slice(METHOD_PREFIX.length) as Method,
    headers: { ...response.headers },
    formFields: { ...response.formFields },
    expiration: toDate(response.expiration),
    key: response.key,
    location: toLocation(response.location),
  });
}

export class SatchelClient {
  readonly #stub: TokenServiceStub;
  readonly #apiKey: string | undefined;
  readonly #timeoutMs: number;

  constructor(target: string, options: ClientOptions = {}) {
    const Stub = loadStub(options.protoRoot ?? DEFAULT_PROTO_ROOT);
    const credentials = options.tls
      ? grpc.credentials.createSsl(options.tls.ca ?? null, options.tls.key ?? null, options.tls.cert ?? null)
      : grpc.credentials.createInsecure();
    this.#stub = new Stub(target, credentials);
    this.#apiKey = options.apiKey;
    this.#timeoutMs = options.timeoutMs ?? 5000;
  }

  /** STS credentials that reach only the player's folder, with exactly these permissions. */
  async issueToken(playerId: string, permissions: readonly Permission[] = [], options: IssueTokenOptions = {}): Promise<Token> {
    const response = await this.#call(this.#stub.IssueToken, {
      playerId,
      scope: options.scope ?? "",
      permissions: permissions.map((p) => PERMISSION_PREFIX + p.toUpperCase()),
      ttl: toDuration(options.ttlSeconds),
    });
    const c = response.credentials;
    return {
      credentials: new Credentials(c.accessKeyId, c.accessKeySecret, c.securityToken, toDate(c.expiration)),
      location: toLocation(response.location),
      permissions: response.permissions.map((p) => p.slice(PERMISSION_PREFIX.length).toLowerCase() as Permission),
    };
  }

  /** A presigned URL (GET, PUT, HEAD, DELETE) or POST form for one object in the player's folder. */
  async presign(playerId: string, key: string, method: Method = "GET", options: PresignOptions = {}): Promise<Presigned> {
    const response = await this.#call(this.#stub.PresignObject, {
      playerId,
      scope: options.scope ?? "",
      key,
      method: METHOD_PREFIX + method,
      expiresIn: toDuration(options.expiresInSeconds),
      contentType: options.contentType ?? "",
      maxSize: options.maxSize ?? 0,
      forbidOverwrite: options.forbidOverwrite ?? false,
      ...(options.contentLength === undefined ? {} : { contentLength: options.contentLength }),
    });
    return toPresigned(response);
  }

  /**
   * Up to 100 objects of one player's folder in one call. Per item, in order: its Presigned, or
   * the SatchelError it was refused with (returned, not thrown: one bad item does not fail the
   * others). What concerns every item (player id, scope, caller, rate limit) rejects.
   */
  async presignMany(playerId: string, items: readonly PresignItem[], options: { scope?: string } = {}): Promise<PresignOutcome[]> {
    const response = await this.#call(this.#stub.PresignObjects, {
      playerId,
      scope: options.scope ?? "",
      items: items.map((item) => ({
        key: item.key,
        method: METHOD_PREFIX + (item.method ?? "GET"),
        expiresIn: toDuration(item.expiresInSeconds),
        contentType: item.contentType ?? "",
        maxSize: item.maxSize ?? 0,
        forbidOverwrite: item.forbidOverwrite ?? false,
        ...(item.contentLength === undefined ? {} : { contentLength: item.contentLength }),
      })),
    });
    return response.results.map((result) =>
      result.presigned
        ? toPresigned(result.presigned)
        : errorFromStatus(result.error?.code ?? grpc.status.UNKNOWN, result.error?.message ?? "", result.error),
    );
  }

  close(): void {
    this.#stub.close();
  }

  #call<Res>(rpc: Unary<object, Res>, request: object): Promise<Res> {
    const metadata = new grpc.Metadata();
    if (this.#apiKey) metadata.set("authorization", `Bearer ${this.#apiKey}`);
    const deadline = new Date(Date.now() + this.#timeoutMs);
    return new Promise((resolve, reject) => {
      rpc.call(this.#stub, request, metadata, { deadline }, (error, response) => {
        if (error) reject(errorFrom(error));
        else resolve(response as Res);
      });
    });
  }
}
