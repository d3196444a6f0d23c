import { describe, expect, it } from '@jest/globals';
import type { V1PodStatus } from '@kubernetes/client-node';
import { ProbeReason } from '../../../../src/api/reasons.js';
import type { ConditionStatus } from '../../../../src/api/types.js';
import {
  classifyPodFailure,
  classifyProbe,
  podCreateFailedVerdict,
  unreadableResultVerdict,
} from '../../../../src/checks/pod/classify.js';
import { classifyTokenReview, type TokenReviewCheck } from '../../../../src/checks/token-review/classify.js';
import {
  secretNotFoundVerdict,
  serviceAccountNotFoundVerdict,
  tokenNotIssuedVerdict,
  type ClassifyContext,
} from '../../../../src/checks/verdicts.js';
import type { HttpStep, IdentityStep, ProbeResult } from '../../../../src/probe/result.js';

const FAKE_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW0ifQ.c2lnbmF0dXJlLW5vdC1yZWFs';
const EXPECTED_USER = 'system:serviceaccount:team:dashboard';

const projected: ClassifyContext = {
  namespace: 'team',
  serviceAccountName: 'dashboard',
  tokenSource: 'Projected',
};
const secret: ClassifyContext = { ...projected, tokenSource: 'Secret', secretName: 'dashboard-token' };
const invalidated: ClassifyContext = { ...secret, legacyTokenInvalidSince: '2025-01-31' };

function response(
  httpStatus: number,
  extra: Partial<Extract<HttpStep, { outcome: 'response' }>> = {},
): HttpStep {
  return { outcome: 'response', httpStatus, latencyMs: 12, ...extra };
}

function failure(code: string, message = 'boom'): HttpStep {
  return { outcome: 'error', error: { code, message }, latencyMs: 5000 };
}

const asExpected: IdentityStep = {
  outcome: 'identity',
  username: EXPECTED_USER,
  groups: ['system:serviceaccounts'],
};

function result(overrides: Partial<ProbeResult> = {}): ProbeResult {
  return {
    version: 1,
    apiserver: '10.96.0.1:443',
    path: '/api',
    files: { tokenFile: 'present', caFile: 'present', namespaceFile: 'present' },
    namespace: 'team',
    token: { kind: 'legacy', issuer: 'kubernetes/serviceaccount', keyId: 'abc' },
    anonymous: response(401, { reason: 'Unauthorized' }),
    authenticated: response(200, { pathsSample: ['v1'] }),
    identity: asExpected,
    startedAt: '2025-01-01T00:00:00.000Z',
    finishedAt: '2025-01-01T00:00:01.000Z',
    ...overrides,
  };
}

interface Case {
  name: string;
  result: ProbeResult;
  ctx: ClassifyContext;
  reason: ProbeReason;
  readyStatus: ConditionStatus;
  tokenProvenInvalid?: boolean;
  /** Words the message must contain, so that a person knows what to do. */
  mentions: string[];
}

const cases: Case[] = [
  {
    name: '200 as the expected account',
    result: result(),
    ctx: projected,
    reason: ProbeReason.Authenticated,
    readyStatus: 'True',
    mentions: [EXPECTED_USER, 'GET /api answered 200'],
  },
  {
    name: '200 from a secret token',
    result: result(),
    ctx: secret,
    reason: ProbeReason.Authenticated,
    readyStatus: 'True',
    mentions: ['secret dashboard-token', EXPECTED_USER],
  },
  {
    name: '200 but SelfSubjectReview unavailable',
    result: result({ identity: { outcome: 'response', httpStatus: 404 } }),
    ctx: projected,
    reason: ProbeReason.Authenticated,
    readyStatus: 'True',
    mentions: ['identity not confirmed', '404'],
  },
  {
    name: '404 on the path still proves authentication',
    result: result({ path: '/nope', authenticated: response(404) }),
    ctx: projected,
    reason: ProbeReason.Authenticated,
    readyStatus: 'True',
    mentions: ['404 (after authentication)'],
  },
  {
    name: '200 as another account',
    result: result({ identity: { outcome: 'identity', username: 'system:serviceaccount:team:other' } }),
    ctx: secret,
    reason: ProbeReason.TokenIdentityMismatch,
    readyStatus: 'False',
    mentions: ['system:serviceaccount:team:other', EXPECTED_USER, 'kubernetes.io/service-account.name'],
  },
  {
    name: '403: authenticated, forbidden path',
    result: result({
      path: '/apis/apps/v1/deployments',
      authenticated: response(403, {
        reason: 'Forbidden',
        message: `deployments.apps is forbidden: User "${EXPECTED_USER}" cannot list resource "deployments"`,
      }),
    }),
    ctx: projected,
    reason: ProbeReason.AuthenticatedForbidden,
    readyStatus: 'True',
    mentions: ['forbidden', 'RBAC', 'The token is fine', '/apis/apps/v1/deployments'],
  },
  {
    name: '403 naming another user, without SelfSubjectReview',
    result: result({
      authenticated: response(403, {
        message: 'forbidden: User "system:serviceaccount:x:y" cannot get path "/api"',
      }),
      identity: { outcome: 'error', error: { code: 'ECONNRESET', message: 'reset' } },
    }),
    ctx: projected,
    reason: ProbeReason.TokenIdentityMismatch,
    readyStatus: 'False',
    mentions: ['system:serviceaccount:x:y'],
  },
  {
    name: '401 on a secret token',
    result: result({
      authenticated: response(401, { reason: 'Unauthorized' }),
      identity: { outcome: 'response', httpStatus: 401 },
    }),
    ctx: secret,
    reason: ProbeReason.TokenRejected,
    readyStatus: 'False',
    tokenProvenInvalid: true,
    mentions: ['secret dashboard-token', '401', '--service-account-key-file', 'key id abc'],
  },
  {
    name: '401 on a projected token',
    result: result({ authenticated: response(401), token: { kind: 'bound' } }),
    ctx: projected,
    reason: ProbeReason.TokenRejected,
    readyStatus: 'False',
    tokenProvenInvalid: true,
    mentions: ['projected token', '80%', 'deleting secrets does not help'],
  },
  {
    name: '401 with the legacy-token-invalid-since label',
    result: result({ authenticated: response(401) }),
    ctx: invalidated,
    reason: ProbeReason.TokenInvalidated,
    readyStatus: 'False',
    tokenProvenInvalid: true,
    mentions: ['kubernetes.io/legacy-token-invalid-since=2025-01-31', 'Remove the label'],
  },
  {
    name: 'token file missing (projected, automount)',
    result: result({
      files: { tokenFile: 'missing', caFile: 'missing', namespaceFile: 'missing' },
      authenticated: { outcome: 'skipped', why: 'token file is missing' },
      identity: { outcome: 'skipped', why: 'token file is missing' },
    }),
    ctx: projected,
    reason: ProbeReason.TokenNotMounted,
    readyStatus: 'False',
    mentions: [
      'automountServiceAccountToken',
      'ServiceAccount admission plugin',
      '--enable-admission-plugins',
    ],
  },
  {
    name: 'token file empty (secret not filled)',
    result: result({
      files: { tokenFile: 'empty', caFile: 'missing', namespaceFile: 'missing' },
      authenticated: { outcome: 'skipped', why: 'token file is empty' },
    }),
    ctx: secret,
    reason: ProbeReason.TokenNotMounted,
    readyStatus: 'False',
    mentions: ['dashboard-token', 'kubernetes.io/service-account-token', 'kube-controller-manager'],
  },
  {
    name: 'token file unreadable',
    result: result({ files: { tokenFile: 'unreadable', caFile: 'present', namespaceFile: 'present' } }),
    ctx: projected,
    reason: ProbeReason.TokenNotMounted,
    readyStatus: 'False',
    mentions: ['cannot read', 'defaultMode'],
  },
  {
    name: 'connection refused',
    result: result({ authenticated: failure('ECONNREFUSED', 'connect ECONNREFUSED 10.96.0.1:443') }),
    ctx: projected,
    reason: ProbeReason.APIServerUnreachable,
    readyStatus: 'Unknown',
    mentions: ['10.96.0.1:443', 'ECONNREFUSED', 'NetworkPolicies', 'says nothing about the token'],
  },
  {
    name: 'no connection in time (NetworkPolicy drop)',
    result: result({ authenticated: failure('CONNECT_TIMEOUT') }),
    ctx: projected,
    reason: ProbeReason.APIServerUnreachable,
    readyStatus: 'Unknown',
    mentions: ['could not reach', 'CONNECT_TIMEOUT'],
  },
  {
    name: 'no apiserver address in the pod',
    result: result({
      apiserver: '',
      authenticated: failure('NO_APISERVER_ADDRESS', 'KUBERNETES_SERVICE_HOST is not set'),
    }),
    ctx: projected,
    reason: ProbeReason.APIServerUnreachable,
    readyStatus: 'Unknown',
    mentions: ['KUBERNETES_SERVICE_HOST'],
  },
  {
    name: 'wrong hostname in the certificate is not a CA mismatch',
    result: result({
      authenticated: failure('ERR_TLS_CERT_ALTNAME_INVALID', "IP: 10.96.0.1 is not in the cert's list"),
    }),
    ctx: projected,
    reason: ProbeReason.APIServerUnreachable,
    readyStatus: 'Unknown',
    mentions: ['ERR_TLS_CERT_ALTNAME_INVALID'],
  },
  {
    name: 'connected but no answer',
    result: result({ authenticated: failure('RESPONSE_TIMEOUT') }),
    ctx: projected,
    reason: ProbeReason.ProbeTimedOut,
    readyStatus: 'Unknown',
    mentions: ['did not answer in time', 'says nothing about the token'],
  },
  ...['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT'].map(
    (code): Case => ({
      name: `untrusted certificate ${code}`,
      result: result({ authenticated: failure(code, 'unable to verify the first certificate') }),
      ctx: secret,
      reason: ProbeReason.CACertMismatch,
      readyStatus: 'False',
      mentions: ['ca.crt does not verify', code, 'token itself was not tested'],
    }),
  ),
  {
    name: 'ca.crt missing',
    result: result({
      files: { tokenFile: 'present', caFile: 'missing', namespaceFile: 'present' },
      authenticated: failure('UNABLE_TO_GET_ISSUER_CERT_LOCALLY'),
    }),
    ctx: secret,
    reason: ProbeReason.CACertMismatch,
    readyStatus: 'False',
    mentions: ['ca.crt is missing'],
  },
  ...[500, 503, 429].map((status): Case => ({
    name: `${status} from the apiserver`,
    result: result({ authenticated: response(status, { reason: 'ServiceUnavailable' }) }),
    ctx: secret,
    reason: ProbeReason.APIServerError,
    readyStatus: 'Unknown',
    mentions: [`${status}`, 'says nothing about the token'],
  })),
  {
    name: 'namespace file missing is noted but not a failure',
    result: result({ files: { tokenFile: 'present', caFile: 'present', namespaceFile: 'missing' } }),
    ctx: secret,
    reason: ProbeReason.Authenticated,
    readyStatus: 'True',
    mentions: ['namespace file is missing'],
  },
];

describe('classifyProbe', () => {
  it.each(cases)('$name → $reason', (c) => {
    const verdict = classifyProbe(c.result, c.ctx);
    expect(verdict.reason).toBe(c.reason);
    expect(verdict.readyStatus).toBe(c.readyStatus);
    expect(verdict.tokenProvenInvalid).toBe(c.tokenProvenInvalid ?? false);
    for (const words of c.mentions) expect(verdict.message).toContain(words);
  });

  it('only a 401 ever proves a token invalid', () => {
    const proven = cases.filter((c) => classifyProbe(c.result, c.ctx).tokenProvenInvalid);
    expect(
      proven.every(
        (c) => c.result.authenticated.outcome === 'response' && c.result.authenticated.httpStatus === 401,
      ),
    ).toBe(true);
  });

  it('reports evidence for status.lastProbe', () => {
    expect(classifyProbe(result(), projected)).toMatchObject({
      httpStatus: 200,
      latencyMs: 12,
      identity: EXPECTED_USER,
    });
  });

  it('never repeats a token that leaked into an apiserver message', () => {
    const verdict = classifyProbe(
      result({ authenticated: response(503, { message: `upstream said ${FAKE_TOKEN}` }) }),
      secret,
    );
    expect(verdict.message).not.toContain(FAKE_TOKEN);
    expect(verdict.message).toContain('[redacted]');
  });
});

describe('verdicts without a probe result', () => {
  it.each([
    [
      'ServiceAccount missing',
      serviceAccountNotFoundVerdict(secret),
      ProbeReason.ServiceAccountNotFound,
      'team/dashboard',
    ],
    ['Secret missing', secretNotFoundVerdict(secret), ProbeReason.SecretNotFound, 'team/dashboard-token'],
    [
      'unreadable result',
      unreadableResultVerdict('invalid probe result: files is not an object'),
      ProbeReason.ProbePodFailed,
      'files',
    ],
    [
      'create refused',
      podCreateFailedVerdict(403, 'exceeded quota: pods'),
      ProbeReason.ProbePodFailed,
      'exceeded quota',
    ],
  ])('%s', (_name, verdict, reason, mention) => {
    expect(verdict.reason).toBe(reason);
    expect(verdict.tokenProvenInvalid).toBe(false);
    expect(verdict.message).toContain(mention);
  });
});

describe('classifyPodFailure', () => {
  const waiting = (reason: string, message?: string): V1PodStatus => ({
    phase: 'Pending',
    containerStatuses: [
      {
        name: 'probe',
        image: 'x',
        imageID: '',
        ready: false,
        restartCount: 0,
        state: { waiting: { reason, message } },
      },
    ],
  });

  it.each<[string, V1PodStatus | undefined, boolean, ProbeReason | undefined, string]>([
    [
      'unschedulable',
      {
        phase: 'Pending',
        conditions: [
          {
            type: 'PodScheduled',
            status: 'False',
            reason: 'Unschedulable',
            message: "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector.",
          },
        ],
      },
      false,
      ProbeReason.ProbePodFailed,
      'cannot be scheduled: 0/1 nodes are available',
    ],
    [
      'image pull back-off',
      waiting('ImagePullBackOff', 'Back-off pulling image "nope"'),
      false,
      ProbeReason.ProbePodFailed,
      'spec.podTemplate.image',
    ],
    [
      'invalid image name',
      waiting('InvalidImageName'),
      false,
      ProbeReason.ProbePodFailed,
      'InvalidImageName',
    ],
    [
      'container config error',
      waiting('CreateContainerConfigError', 'secret "x" not found'),
      false,
      ProbeReason.ProbePodFailed,
      'secret "x" not found',
    ],
    [
      'deadline exceeded',
      {
        phase: 'Failed',
        reason: 'DeadlineExceeded',
        message: 'Pod was active on the node longer than the specified deadline',
      },
      false,
      ProbeReason.ProbeTimedOut,
      'deadline',
    ],
    [
      'stuck creating past the budget',
      waiting('ContainerCreating'),
      true,
      ProbeReason.ProbeTimedOut,
      'ContainerCreating',
    ],
    [
      'crashed without a result',
      {
        phase: 'Failed',
        containerStatuses: [
          {
            name: 'probe',
            image: 'x',
            imageID: '',
            ready: false,
            restartCount: 0,
            state: { terminated: { exitCode: 137, reason: 'OOMKilled' } },
          },
        ],
      },
      false,
      ProbeReason.ProbePodFailed,
      'OOMKilled (exit code 137)',
    ],
    [
      'evicted',
      { phase: 'Failed', reason: 'Evicted', message: 'The node was low on resource: memory.' },
      false,
      ProbeReason.ProbePodFailed,
      'Evicted',
    ],
    ['still creating within the budget', waiting('ContainerCreating'), false, undefined, ''],
    ['running', { phase: 'Running' }, false, undefined, ''],
    ['not yet seen by the scheduler', undefined, false, undefined, ''],
  ])('%s', (_name, status, overdue, reason, mention) => {
    const verdict = classifyPodFailure(status, { overdue });
    expect(verdict?.reason).toBe(reason);
    if (verdict) {
      expect(verdict.readyStatus).toBe('Unknown');
      expect(verdict.tokenProvenInvalid).toBe(false);
      expect(verdict.message).toContain(mention);
    }
  });
});

describe('classifyTokenReview (spec.check TokenReview)', () => {
  const expected = 'system:serviceaccount:team:dashboard';
  it.each<[string, TokenReviewCheck, ClassifyContext, string, ConditionStatus, boolean, string]>([
    [
      'accepted as the account',
      { kind: 'reviewed', authenticated: true, username: expected, latencyMs: 4 },
      secret,
      ProbeReason.Authenticated,
      'True',
      false,
      `The token in secret dashboard-token authenticates as ${expected} (TokenReview, 4ms).`,
    ],
    [
      'accepted as another account',
      { kind: 'reviewed', authenticated: true, username: 'system:serviceaccount:team:other', latencyMs: 4 },
      secret,
      ProbeReason.TokenIdentityMismatch,
      'False',
      false,
      `not as ${expected}`,
    ],
    [
      'rejected',
      {
        kind: 'reviewed',
        authenticated: false,
        error: 'invalid bearer token',
        latencyMs: 3,
        claims: { kind: 'legacy', keyId: 'old-key', issuer: 'kubernetes/serviceaccount' },
      },
      secret,
      ProbeReason.TokenRejected,
      'False',
      true,
      'TokenReview rejected the token in secret dashboard-token: invalid bearer token (token issuer kubernetes/serviceaccount, key id old-key); a request with it gets 401',
    ],
    [
      'rejected, labelled invalid by the legacy token cleaner',
      { kind: 'reviewed', authenticated: false, latencyMs: 3 },
      { ...secret, legacyTokenInvalidSince: '2026-01-02' },
      ProbeReason.TokenInvalidated,
      'False',
      true,
      'kubernetes.io/legacy-token-invalid-since=2026-01-02',
    ],
    [
      'apiserver unreachable',
      { kind: 'failed', message: 'connect ECONNREFUSED 10.96.0.1:443' },
      secret,
      ProbeReason.APIServerUnreachable,
      'Unknown',
      false,
      'This says nothing about the token.',
    ],
    [
      'operator may not review',
      { kind: 'failed', status: 403, message: 'tokenreviews is forbidden' },
      secret,
      ProbeReason.APIServerError,
      'Unknown',
      false,
      'create on tokenreviews.authentication.k8s.io',
    ],
    [
      'apiserver failing',
      { kind: 'failed', status: 503, message: 'etcd timeout' },
      secret,
      ProbeReason.APIServerError,
      'Unknown',
      false,
      'answered 503',
    ],
  ])('%s', (_name, check, ctx, reason, ready, proven, mention) => {
    const verdict = classifyTokenReview(check, ctx);
    expect(verdict.reason).toBe(reason);
    expect(verdict.readyStatus).toBe(ready);
    expect(verdict.tokenProvenInvalid).toBe(proven);
    expect(verdict.message).toContain(mention);
  });

  it('records the identity and latency as evidence', () => {
    expect(
      classifyTokenReview(
        { kind: 'reviewed', authenticated: true, username: expected, latencyMs: 7 },
        secret,
      ),
    ).toMatchObject({ identity: expected, latencyMs: 7 });
  });

  it('says what an unfilled token secret needs', () => {
    const verdict = tokenNotIssuedVerdict(secret);
    expect(verdict).toMatchObject({ reason: ProbeReason.TokenNotIssued, readyStatus: 'False' });
    expect(verdict.message).toContain('kubernetes.io/service-account.name: dashboard');
  });
});

/**
 * Every verdict word for word: the message is what a person acts on, so a change of wording (or of a
 * reason, a status or the evidence) shows up here for review (`jest -u` accepts it). The inputs also
 * walk every rule's edges: each certificate code and stuck waiting reason, statuses on either side of a
 * boundary, an identity taken only from a 403's message.
 */
describe('verdicts, word for word', () => {
  const UNTRUSTED = [
    'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    'SELF_SIGNED_CERT_IN_CHAIN',
    'DEPTH_ZERO_SELF_SIGNED_CERT',
    'UNABLE_TO_GET_ISSUER_CERT',
    'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
    'CERT_SIGNATURE_FAILURE',
    'CERT_UNTRUSTED',
    'CERT_REJECTED',
  ];
  const unnamed: ClassifyContext = { ...projected, tokenSource: 'Secret' };
  type FileState = ProbeResult['files']['tokenFile'];
  const files = (
    tokenFile: FileState,
    caFile: FileState = 'present',
    namespaceFile: FileState = 'present',
  ) => ({
    files: { tokenFile, caFile, namespaceFile },
  });
  const forbiddenAs = (user: string) =>
    response(403, { reason: 'Forbidden', message: `forbidden: User "${user}" cannot get path "/api"` });
  const unconfirmed = { outcome: 'response', httpStatus: 403, latencyMs: 3 } as const;
  const probeCases: Array<[string, ProbeResult, ClassifyContext]> = [
    ...UNTRUSTED.map((code): [string, ProbeResult, ClassifyContext] => [
      code,
      result({ authenticated: failure(code, 'unable to verify the first certificate') }),
      secret,
    ]),
    [
      'untrusted, ca.crt missing',
      result({
        ...files('present', 'missing'),
        authenticated: failure('SELF_SIGNED_CERT_IN_CHAIN'),
      }),
      secret,
    ],
    [
      'response timeout',
      result({ authenticated: failure('ResponseTimeout', 'no answer in 5000ms') }),
      secret,
    ],
    [
      'no apiserver address',
      result({ authenticated: failure('NoApiserverAddress', 'KUBERNETES_SERVICE_HOST is not set') }),
      secret,
    ],
    [
      'connection refused',
      result({ authenticated: failure('ECONNREFUSED', 'connect ECONNREFUSED') }),
      secret,
    ],
    [
      'connection refused, no address known',
      result({ apiserver: '', authenticated: failure('ECONNREFUSED', 'connect ECONNREFUSED') }),
      secret,
    ],
    ['token file unreadable', result(files('unreadable')), secret],
    ['token file missing, secret', result(files('missing')), secret],
    ['token file missing, unnamed secret', result(files('missing')), unnamed],
    ['token file missing, projected', result(files('empty')), projected],
    ['request skipped', result({ authenticated: { outcome: 'skipped', why: 'no token to send' } }), secret],
    ['401, secret', result({ authenticated: response(401, { reason: 'Unauthorized' }) }), secret],
    ['401, unnamed secret', result({ authenticated: response(401) }), unnamed],
    ['401, invalidated secret', result({ authenticated: response(401) }), invalidated],
    [
      '401, unnamed invalidated secret',
      result({ authenticated: response(401) }),
      { ...unnamed, legacyTokenInvalidSince: '2025-01-31' },
    ],
    [
      '401, projected (a cleaner label says nothing about it)',
      result({ authenticated: response(401) }),
      { ...projected, legacyTokenInvalidSince: '2025-01-31' },
    ],
    [
      '429 with reason and message',
      result({ authenticated: response(429, { reason: 'TooManyRequests', message: 'slow down' }) }),
      secret,
    ],
    ['503, bare', result({ authenticated: response(503) }), secret],
    ['403, identity confirmed', result({ authenticated: forbiddenAs(EXPECTED_USER) }), secret],
    [
      '403, identity from the message only',
      result({ authenticated: forbiddenAs(EXPECTED_USER), identity: unconfirmed }),
      secret,
    ],
    [
      "403, another account's name in the message",
      result({ authenticated: forbiddenAs('system:serviceaccount:team:other'), identity: unconfirmed }),
      projected,
    ],
    ['403 without a message', result({ authenticated: response(403), identity: unconfirmed }), secret],
    [
      '404 whose message names a user: not taken as the identity',
      result({ authenticated: response(404, { message: `User "${EXPECTED_USER}"` }), identity: unconfirmed }),
      secret,
    ],
    [
      '200, identity not confirmed (error)',
      result({
        identity: { outcome: 'error', error: { code: 'ECONNRESET', message: 'reset' } },
      }),
      secret,
    ],
    [
      '200, identity not confirmed (skipped)',
      result({ identity: { outcome: 'skipped', why: 'SelfSubjectReview not served' } }),
      projected,
    ],
    [
      '200 as another account, secret',
      result({ identity: { ...asExpected, username: 'system:serviceaccount:team:other' } }),
      secret,
    ],
    [
      '200 as another account, projected',
      result({ identity: { ...asExpected, username: 'system:serviceaccount:team:other' } }),
      projected,
    ],
    ['199 (below 2xx)', result({ authenticated: response(199) }), projected],
    ['200', result(), projected],
    ['299', result({ authenticated: response(299) }), projected],
    ['300', result({ authenticated: response(300) }), projected],
    ['namespace file missing', result(files('present', 'present', 'missing')), secret],
  ];
  it.each(probeCases)('classifyProbe: %s', (_name, r, ctx) => {
    expect(classifyProbe(r, ctx)).toMatchSnapshot();
  });

  const container = (state: object) => ({
    name: 'probe',
    image: 'x',
    imageID: '',
    ready: false,
    restartCount: 0,
    state,
  });
  const waitingOn = (reason: string, message?: string): V1PodStatus => ({
    phase: 'Pending',
    containerStatuses: [container({ waiting: { reason, ...(message ? { message } : {}) } })],
  });
  const scheduled = (type: string, status: string, reason: string, message?: string): V1PodStatus => ({
    phase: 'Pending',
    conditions: [{ type, status, reason, ...(message ? { message } : {}) }],
  });
  const podCases: Array<[string, V1PodStatus | undefined, boolean]> = [
    ...[
      'ErrImagePull',
      'ImagePullBackOff',
      'InvalidImageName',
      'ErrImageNeverPull',
      'CreateContainerConfigError',
      'CreateContainerError',
      'RunContainerError',
      'CrashLoopBackOff',
    ].map((reason): [string, V1PodStatus, boolean] => [
      reason,
      waitingOn(reason, `${reason} details`),
      false,
    ]),
    ['stuck without a message', waitingOn('ErrImagePull'), false],
    [
      'waiting in the second container',
      {
        phase: 'Pending',
        containerStatuses: [
          container({ running: {} }),
          container({ waiting: { reason: 'CrashLoopBackOff' } }),
        ],
      },
      false,
    ],
    [
      'deadline, container waiting',
      { ...waitingOn('ContainerCreating', 'pulling'), reason: 'DeadlineExceeded' },
      false,
    ],
    ['deadline', { phase: 'Failed', reason: 'DeadlineExceeded' }, false],
    ['unschedulable', scheduled('PodScheduled', 'False', 'Unschedulable', '0/1 nodes are available'), false],
    ['unschedulable without a message', scheduled('PodScheduled', 'False', 'Unschedulable'), false],
    [
      'scheduling gated, not unschedulable',
      scheduled('PodScheduled', 'False', 'SchedulingGated', 'gated'),
      false,
    ],
    ['scheduled', scheduled('PodScheduled', 'True', 'Unschedulable', 'stale reason'), false],
    ['another condition', scheduled('Ready', 'False', 'Unschedulable', 'not the scheduler'), false],
    [
      'terminated in the second container',
      {
        phase: 'Failed',
        containerStatuses: [
          container({ running: {} }),
          container({ terminated: { exitCode: 2, reason: 'Error' } }),
        ],
      },
      false,
    ],
    [
      'terminated without details',
      { phase: 'Failed', containerStatuses: [container({ terminated: {} })] },
      false,
    ],
    ['failed without details', { phase: 'Failed' }, false],
    ['failed with a message', { phase: 'Failed', reason: 'Evicted', message: 'low on memory' }, false],
    ['overdue, no phase', {}, true],
    ['overdue, pending', waitingOn('ContainerCreating'), true],
    ['overdue but succeeded (the result is being read)', { phase: 'Succeeded' }, true],
    ['not overdue', { phase: 'Pending' }, false],
  ];
  it.each(podCases)('classifyPodFailure: %s', (_name, status, overdue) => {
    expect(classifyPodFailure(status, { overdue })).toMatchSnapshot();
  });

  it('verdicts without a probe result', () => {
    expect(unreadableResultVerdict('files is not an object')).toMatchSnapshot();
    expect(podCreateFailedVerdict(403, 'exceeded quota: pods')).toMatchSnapshot();
  });

  const user = 'system:serviceaccount:team:dashboard';
  const reviewCases: Array<[string, TokenReviewCheck, ClassifyContext]> = [
    ['accepted', { kind: 'reviewed', authenticated: true, username: user, latencyMs: 4 }, secret],
    [
      'accepted, unnamed secret',
      { kind: 'reviewed', authenticated: true, username: user, latencyMs: 4 },
      unnamed,
    ],
    [
      'accepted as another account',
      { kind: 'reviewed', authenticated: true, username: 'system:serviceaccount:team:other', latencyMs: 4 },
      secret,
    ],
    [
      'rejected with an error and claims',
      {
        kind: 'reviewed',
        authenticated: false,
        error: 'token expired',
        latencyMs: 9,
        claims: { kind: 'bound', keyId: 'k2' },
      },
      secret,
    ],
    ['rejected, bare', { kind: 'reviewed', authenticated: false, latencyMs: 3 }, secret],
    [
      'rejected, invalidated, with an error',
      { kind: 'reviewed', authenticated: false, error: 'invalid bearer token', latencyMs: 3 },
      invalidated,
    ],
    ['rejected, invalidated', { kind: 'reviewed', authenticated: false, latencyMs: 3 }, invalidated],
    ['unreachable', { kind: 'failed', message: 'connect ECONNREFUSED 10.96.0.1:443' }, secret],
    ['forbidden', { kind: 'failed', status: 403, message: 'tokenreviews is forbidden' }, secret],
    ['failing', { kind: 'failed', status: 503, message: 'etcd timeout' }, unnamed],
  ];
  it.each(reviewCases)('classifyTokenReview: %s', (_name, check, ctx) => {
    expect(classifyTokenReview(check, ctx)).toMatchSnapshot();
  });
});
