/**
 * A fake apiserver for controller-layer tests: `KubeApi` over an in-memory store keyed by API path
 * (build paths with `apiPaths`). It behaves like the apiserver exactly where the operator depends on
 * it — 404/409 with the apiserver's reasons and messages, delete preconditions, RFC 7386 merge patch,
 * the status subresource, generation and resourceVersion, TokenReview — and records every call so a
 * test can assert their order. Test support, not a product: anything the operator does not use is left out.
 */
import { toApiTime } from '../../../src/api/conditions.js';
import {
  ANNOTATION_SERVICE_ACCOUNT_NAME,
  ANNOTATION_SERVICE_ACCOUNT_UID,
  SECRET_TYPE_SERVICE_ACCOUNT_TOKEN,
} from '../../../src/api/labels.js';
import type { KubeApi, Query, RequestOptions } from '../../../src/kube/client.js';
import { KubeApiError } from '../../../src/kube/errors.js';
import { apiPaths, serviceAccountUsername, type ObjectMeta } from '../../../src/kube/resources.js';

export type Verb = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** One call the operator made. Bodies are copies with every field named `token` removed. */
export interface RecordedCall {
  verb: Verb;
  path: string;
  query?: Query;
  body?: unknown;
}

/** An object as a client sends it: a name is all the metadata it needs. */
export interface NewObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta & { name: string };
  [field: string]: unknown;
}

/** An object as the store keeps it: plain JSON, with metadata the fake fills in. */
export interface StoredObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta & { name: string; namespace: string };
  [field: string]: unknown;
}

type Json = Record<string, unknown>;
type Hook = (call: RecordedCall) => void;

/** `/api/v1/namespaces/ns/secrets/name[/status]` or `/apis/group/version/namespaces/ns/plural/name[/status]`. */
const OBJECT_PATH =
  /^(\/api\/v1|\/apis\/([^/]+)\/[^/]+)\/namespaces\/([^/]+)\/([^/]+)(?:\/([^/]+))?(\/status)?$/;

interface ParsedPath {
  collection: string;
  namespace: string;
  /** `secrets`, `authprobes.authprobe.io`: how the apiserver names the resource in messages. */
  resource: string;
  name?: string;
  status: boolean;
}

function parsePath(path: string): ParsedPath {
  const m = OBJECT_PATH.exec(path);
  if (!m) throw new Error(`fake-kube: unsupported path ${path}`);
  const [, prefix = '', group, namespace = '', plural = '', name, status] = m;
  return {
    collection: `${prefix}/namespaces/${namespace}/${plural}`,
    namespace: decodeURIComponent(namespace),
    resource: group ? `${plural}.${group}` : plural,
    ...(name !== undefined ? { name: decodeURIComponent(name) } : {}),
    status: status !== undefined,
  };
}

const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** What travels over the wire: JSON, so `undefined` fields vanish as they would. */
const wire = <T>(value: T): T => (value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T));

/** RFC 7386: objects merge key by key, `null` deletes a key, anything else replaces. */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const out: Json = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = applyMergePatch(out[key], value);
  }
  return out;
}

/** A copy for the call record: never keep a token value, wherever it sits. */
function withoutTokens(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutTokens);
  if (!isObject(value)) return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key]) => key !== 'token')
      .map(([key, v]) => [key, withoutTokens(v)]),
  );
}

const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');

export class FakeKube implements KubeApi {
  readonly calls: RecordedCall[] = [];
  private readonly store = new Map<string, StoredObject>();
  /** TokenReview answers: token → username. A token not in the table is rejected. */
  private readonly tokens = new Map<string, string>();
  private readonly createHooks: Array<{ prefix: string; fn: (path: string, obj: StoredObject) => void }> = [];
  private readonly hooks: Array<{ verb: Verb; path: string; fn: Hook; every: boolean }> = [];
  private resourceVersion = 1000;
  private uids = 0;

  constructor(private readonly now: () => number = Date.now) {}

  // ---- KubeApi ------------------------------------------------------------------------------------

  async get<T>(path: string, options: RequestOptions = {}): Promise<T> {
    this.call({ verb: 'GET', path, ...(options.query ? { query: options.query } : {}) });
    // resourceVersion=0 (served from the watch cache) reads the same store: it is never stale here.
    const found = this.store.get(path);
    if (found) return wire(found) as T;
    const parsed = parsePath(path);
    if (parsed.name === undefined) {
      return { kind: 'List', items: this.list(parsed.collection) } as T;
    }
    throw notFound(parsed);
  }

  async post<T>(path: string, body: unknown): Promise<T> {
    this.call({ verb: 'POST', path, body });
    if (path === apiPaths.tokenReviews()) return this.review(body) as T;
    const tokenRequest = /^\/api\/v1\/namespaces\/([^/]+)\/serviceaccounts\/([^/]+)\/token$/.exec(path);
    if (tokenRequest) return this.requestToken(tokenRequest[1] ?? '', tokenRequest[2] ?? '', body) as T;
    return this.add(path, wire(body) as NewObject) as T;
  }

  async put<T>(path: string, body: unknown): Promise<T> {
    this.call({ verb: 'PUT', path, body });
    const current = this.store.get(path);
    if (!current) throw notFound(parsePath(path));
    const next = wire(body) as StoredObject;
    checkResourceVersion(parsePath(path), current, next.metadata?.resourceVersion);
    return wire(this.write(path, { ...next, metadata: { ...next.metadata, ...identity(current) } })) as T;
  }

  async delete<T>(path: string, body?: unknown): Promise<T> {
    this.call({ verb: 'DELETE', path, ...(body !== undefined ? { body } : {}) });
    const parsed = parsePath(path);
    const current = this.store.get(path);
    if (!current) throw notFound(parsed);
    const pre = (isObject(body) && isObject(body['preconditions']) ? body['preconditions'] : {}) as {
      uid?: string;
      resourceVersion?: string;
    };
    if (pre.uid !== undefined && pre.uid !== current.metadata.uid) {
      throw preconditionFailed(parsed, 'UID', pre.uid, current.metadata.uid);
    }
    if (pre.resourceVersion !== undefined && pre.resourceVersion !== current.metadata.resourceVersion) {
      throw preconditionFailed(
        parsed,
        'ResourceVersion',
        pre.resourceVersion,
        current.metadata.resourceVersion,
      );
    }
    this.store.delete(path);
    return wire(current) as T;
  }

  async mergePatch<T>(path: string, patch: unknown): Promise<T> {
    this.call({ verb: 'PATCH', path, body: patch });
    const parsed = parsePath(path);
    const objectPath = parsed.status ? path.slice(0, -'/status'.length) : path;
    const current = this.store.get(objectPath);
    if (!current) throw notFound(parsed);
    const p = wire(patch) as Json;
    const meta = isObject(p['metadata']) ? p['metadata'] : {};
    checkResourceVersion(parsed, current, meta['resourceVersion'] as string | undefined);
    const hasStatusSubresource = parsed.resource.startsWith('authprobes.');
    let next: StoredObject;
    if (parsed.status) {
      // The status subresource changes status and nothing else.
      next = { ...current, status: applyMergePatch(current['status'], p['status']) };
    } else {
      const { status: _ignored, ...rest } = p;
      next = applyMergePatch(current, hasStatusSubresource ? rest : p) as StoredObject;
      next.metadata = { ...next.metadata, ...identity(current) };
    }
    return wire(this.write(objectPath, next)) as T;
  }

  // ---- What a test arranges -----------------------------------------------------------------------

  /**
   * Creates an object in collection `path` as another client would (not recorded): the apiserver fills
   * in metadata and the onCreate hooks run. Throws AlreadyExists like a POST would.
   */
  add(path: string, obj: NewObject): StoredObject {
    const parsed = parsePath(path);
    // metadata.generateName: the apiserver appends a random suffix (here a counter).
    const generated = (obj.metadata as { generateName?: string } | undefined)?.generateName;
    const name =
      obj.metadata?.name || (generated ? `${generated}${String(++this.uids).padStart(5, '0')}` : '');
    if (!name) {
      throw new KubeApiError(
        422,
        'Invalid',
        `${parsed.resource} "" is invalid: metadata.name: Required value`,
      );
    }
    const objectPath = `${parsed.collection}/${encodeURIComponent(name)}`;
    if (this.store.has(objectPath)) {
      throw new KubeApiError(409, 'AlreadyExists', `${parsed.resource} "${name}" already exists`);
    }
    const created: StoredObject = {
      ...wire(obj),
      metadata: {
        ...wire(obj.metadata),
        name,
        namespace: parsed.namespace,
        uid: `uid-${String(++this.uids).padStart(4, '0')}`,
        resourceVersion: String(++this.resourceVersion),
        creationTimestamp: toApiTime(new Date(this.now())),
        ...(parsed.resource.startsWith('authprobes.') ? { generation: 1 } : {}),
      },
    };
    this.store.set(objectPath, created);
    const answer = wire(created);
    for (const hook of this.createHooks) {
      if (objectPath.startsWith(hook.prefix)) hook.fn(objectPath, wire(created));
    }
    return answer;
  }

  /** Changes a stored object as another client (or controller) would: resourceVersion moves on. */
  update(path: string, change: (obj: StoredObject) => void): StoredObject {
    const current = this.store.get(path);
    if (!current) throw new Error(`fake-kube: update of missing ${path}`);
    const next = wire(current);
    change(next);
    return wire(this.write(path, next));
  }

  /** Deletes as another client would (not recorded, no preconditions). */
  remove(path: string): void {
    this.store.delete(path);
  }

  /** Reads without recording a call (what an informer's cache would hold). */
  peek<T = StoredObject>(path: string): T | undefined {
    const found = this.store.get(path);
    return found && (wire(found) as T);
  }

  /** The objects directly in a collection, in creation order. */
  list<T = StoredObject>(collection: string): T[] {
    return [...this.store.entries()]
      .filter(
        ([path]) => path.startsWith(`${collection}/`) && !path.slice(collection.length + 1).includes('/'),
      )
      .map(([, obj]) => wire(obj) as T);
  }

  /** Every stored object of one resource (e.g. `pods`), across namespaces. */
  all<T = StoredObject>(plural: string): T[] {
    const pattern = new RegExp(`/namespaces/[^/]+/${plural}/[^/]+$`);
    return [...this.store.entries()].filter(([path]) => pattern.test(path)).map(([, obj]) => wire(obj) as T);
  }

  /** TokenReview answers `authenticated: true, username` for this token from now on. */
  acceptToken(token: string, username: string): void {
    this.tokens.set(token, username);
  }

  /** Who the apiserver takes `token` for; undefined when it rejects it. */
  authenticatedAs(token: string): string | undefined {
    return this.tokens.get(token);
  }

  rejectToken(token: string): void {
    this.tokens.delete(token);
  }

  /** Runs `fn(path, created)` after every create under `pathPrefix` (another controller reacting). */
  onCreate(pathPrefix: string, fn: (path: string, obj: StoredObject) => void): void {
    this.createHooks.push({ prefix: pathPrefix, fn });
  }

  /**
   * Runs `fn` once, right before the next `verb` call to exactly `path` (query aside) is served: it may
   * change the store (someone else acting in between) or throw (the call fails with that error).
   */
  before(verb: Verb, path: string, fn: Hook): void {
    this.hooks.push({ verb, path, fn, every: false });
  }

  /** Like `before`, for every such call. */
  beforeEvery(verb: Verb, path: string, fn: Hook): void {
    this.hooks.push({ verb, path, fn, every: true });
  }

  /** The next `verb` call to `path` fails with `error` (a 5xx, a timeout...). */
  failNext(verb: Verb, path: string, error: Error): void {
    this.before(verb, path, () => {
      throw error;
    });
  }

  /** The recorded calls, optionally only those of one verb and/or under one path. */
  callsTo(verb?: Verb, pathPrefix = ''): RecordedCall[] {
    return this.calls.filter((c) => (verb === undefined || c.verb === verb) && c.path.startsWith(pathPrefix));
  }

  /** Every call but reads, as `VERB path` lines: the order of what the operator changed or asked. */
  writes(): string[] {
    return this.calls.filter((c) => c.verb !== 'GET').map((c) => `${c.verb} ${c.path}`);
  }

  clearCalls(): void {
    this.calls.length = 0;
  }

  // ---- Inside ----------------------------------------------------------------------------------------

  private call(call: RecordedCall): void {
    this.calls.push({
      ...call,
      ...(call.body !== undefined ? { body: withoutTokens(wire(call.body)) } : {}),
    });
    const index = this.hooks.findIndex((h) => h.verb === call.verb && h.path === call.path);
    const hook = this.hooks[index];
    if (!hook) return;
    if (!hook.every) this.hooks.splice(index, 1);
    hook.fn(call);
  }

  /** Stores `next` at `path`; a change moves resourceVersion on (and generation, for an AuthProbe's spec). */
  private write(path: string, next: StoredObject): StoredObject {
    const current = this.store.get(path);
    const comparable = (o: StoredObject | undefined) =>
      JSON.stringify({ ...o, metadata: { ...o?.metadata, resourceVersion: undefined } });
    if (current && comparable(current) === comparable(next)) return current;
    const specChanged = JSON.stringify(current?.['spec']) !== JSON.stringify(next['spec']);
    const stored: StoredObject = {
      ...next,
      metadata: {
        ...next.metadata,
        resourceVersion: String(++this.resourceVersion),
        ...(next.metadata.generation !== undefined && specChanged
          ? { generation: next.metadata.generation + 1 }
          : {}),
      },
    };
    this.store.set(path, stored);
    return stored;
  }

  /** How TokenRequest tokens are made (the n-th request); the apiserver then accepts them. */
  mintToken: (namespace: string, account: string, n: number) => string = (_ns, account, n) =>
    `requested-token-${account}-${n}`;
  private tokenRequests = 0;

  /** POST .../serviceaccounts/NAME/token: a token of an existing account, accepted from then on. */
  private requestToken(namespace: string, account: string, body: unknown): Json {
    if (!this.store.has(apiPaths.serviceAccount(namespace, account)))
      throw new KubeApiError(404, 'NotFound', `serviceaccounts "${account}" not found`);
    const seconds = Number(
      (isObject(body) && isObject(body['spec']) ? body['spec']['expirationSeconds'] : undefined) ?? 3600,
    );
    const token = this.mintToken(namespace, account, ++this.tokenRequests);
    this.acceptToken(token, serviceAccountUsername(namespace, account));
    return {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      status: { token, expirationTimestamp: toApiTime(new Date(this.now() + seconds * 1000)) },
    };
  }

  private review(body: unknown): Json {
    const token = (isObject(body) && isObject(body['spec']) ? body['spec']['token'] : undefined) as
      string | undefined;
    const username = token === undefined ? undefined : this.tokens.get(token);
    return {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      spec: {},
      status: username
        ? {
            authenticated: true,
            user: { username, uid: `user-${username}`, groups: ['system:serviceaccounts'] },
          }
        : { user: {}, error: 'invalid bearer token' },
    };
  }
}

/** What the apiserver keeps from the stored object whatever a patch or update says. */
function identity(current: StoredObject): Partial<ObjectMeta> {
  const { name, namespace, uid, creationTimestamp, generation } = current.metadata;
  return { name, namespace, uid, creationTimestamp, ...(generation !== undefined ? { generation } : {}) };
}

function notFound(path: ParsedPath): KubeApiError {
  return new KubeApiError(404, 'NotFound', `${path.resource} "${path.name ?? ''}" not found`);
}

function checkResourceVersion(path: ParsedPath, current: StoredObject, expected: string | undefined): void {
  if (expected === undefined || expected === current.metadata.resourceVersion) return;
  throw new KubeApiError(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${path.resource} "${path.name ?? ''}": the object has been modified; please apply your changes to the latest version and try again`,
  );
}

function preconditionFailed(path: ParsedPath, what: string, wanted: string, actual?: string): KubeApiError {
  return new KubeApiError(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${path.resource} "${path.name ?? ''}": Precondition failed: ${what} in precondition: ${wanted}, ${what} in object meta: ${actual ?? ''}`,
  );
}

/**
 * kube-controller-manager's tokens controller, for `onCreate(apiPaths.secrets(ns), ...)`: fills a new
 * `kubernetes.io/service-account-token` Secret whose ServiceAccount exists (token, ca.crt, namespace,
 * the account's uid) at once, and makes the apiserver accept the token it issued.
 */
export function tokensController(kube: FakeKube, issue: (n: number) => string = (n) => `issued-token-${n}`) {
  let issued = 0;
  return (path: string, secret: StoredObject): void => {
    const { namespace } = secret.metadata;
    const account = secret.metadata.annotations?.[ANNOTATION_SERVICE_ACCOUNT_NAME];
    const data = secret['data'] as Record<string, string> | undefined;
    if (secret['type'] !== SECRET_TYPE_SERVICE_ACCOUNT_TOKEN || !account || data?.['token']) return;
    const sa = kube.peek(apiPaths.serviceAccount(namespace, account));
    if (!sa) return;
    const token = issue(++issued);
    kube.update(path, (s) => {
      s.metadata.annotations = {
        ...s.metadata.annotations,
        [ANNOTATION_SERVICE_ACCOUNT_UID]: sa.metadata.uid ?? '',
      };
      s['data'] = { token: b64(token), 'ca.crt': b64('fake-ca'), namespace: b64(namespace) };
    });
    kube.acceptToken(token, serviceAccountUsername(namespace, account));
  };
}
