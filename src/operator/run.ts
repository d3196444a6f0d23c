import { loadConfig, ConfigError, describeSettings, type OperatorConfig } from '../config/config.js';
import { createLogger, type Logger } from '../log/logger.js';
import { KubeClient } from '../kube/client.js';
import { isUnauthorized } from '../kube/errors.js';
import type { KubeObject, PodJson } from '../kube/resources.js';
import { KubeconfigError, loadClusterAccess, type ClusterAccess } from '../kube/access.js';
import { OperatorMetrics } from '../metrics/metrics.js';
import { Informer, apiListWatcher } from '../runtime/informer.js';
import { Controller } from '../runtime/controller.js';
import { Manager } from '../runtime/manager.js';
import { apiLeaseStore } from '../runtime/leader.js';
import { leadershipFence } from '../runtime/leadership.js';
import { EventRecorder } from '../events/recorder.js';
import { AUTHPROBE_GROUP, AUTHPROBE_PLURAL, AUTHPROBE_VERSION, type AuthProbe } from '../api/types.js';
import { LABEL_MANAGED_BY, LABEL_PROBE, MANAGED_BY_VALUE } from '../api/labels.js';
import { AuthProbeReconciler } from '../controller/authprobe-reconciler.js';
import { PodCheck } from '../checks/pod/pod-check.js';
import { TokenReviewCheckKind } from '../checks/token-review/token-review-check.js';
import { RotationSignal } from '../signals/rotation.js';
import { SigningKeySignal } from '../signals/signing-keys.js';
import { TrustedKeys, type KeySetChange } from '../signals/trusted-keys.js';
import { SecretHealer } from '../heal/secret-healer.js';
import { TokensControllerCanary } from '../heal/canary.js';
import { LedgerStore } from '../heal/ledger-store.js';
import { CredentialWatch } from './credential-watch.js';
import { CopyCheck } from '../checks/copy/copy-check.js';
import type { RequestOptions } from 'node:https';

/** `authprobe operator [--setting=value ...]`: runs the controller until SIGTERM or SIGINT. */
export async function operatorCommand(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(
      `usage: authprobe operator [--setting=value ...]\n\nsettings (flag, environment variable):\n${describeSettings()}\n`,
    );
    return 0;
  }
  let config: OperatorConfig;
  try {
    config = loadConfig(argv, process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`authprobe: invalid setting ${err.setting}: ${err.message}\n`);
      return 64;
    }
    throw err;
  }
  const logger = createLogger({ level: config.logLevel });
  if (!config.probeImage) {
    logger.fatal(
      'no probe image: set --probe-image or AUTHPROBE_IMAGE (the Helm chart sets it to the operator image)',
    );
    return 64;
  }
  let access: ClusterAccess;
  try {
    access = await loadClusterAccess();
  } catch (err) {
    if (!(err instanceof KubeconfigError)) throw err;
    logger.fatal(err.message);
    return 64;
  }
  logger.info({ apiserver: access.server.origin, from: access.source }, 'cluster access');
  const credential = new CredentialWatch(logger);
  const client = new KubeClient(access, { onResponse: (status) => credential.observe(status) });
  const metrics = new OperatorMetrics();
  credential.onChange((rejected) => metrics.credentialRejected.set(rejected ? 1 : 0));
  const manager = buildOperator(config, client, metrics, logger, credential);

  const stop = new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  await manager.start();
  const signal = await stop;
  logger.info({ signal }, 'stopping');
  await manager.shutdown();
  client.close();
  return 0;
}

/** Wires informers, the reconciler, the healer and leader election; exported for integration tests. */
export function buildOperator(
  config: OperatorConfig,
  apiClient: KubeClient,
  metrics: OperatorMetrics,
  logger: Logger,
  credential?: CredentialWatch,
): Manager {
  const namespaces = config.watchNamespaces.length ? config.watchNamespaces : [undefined];
  // Informers (every replica, standbys too) and the Lease use the client as it is; everything the
  // controllers do goes through the leadership fence: no request of a term that has ended is sent.
  const client = apiClient.fenced(
    leadershipFence((method, path, why) => {
      metrics.requestsRefused.inc({ verb: method });
      logger.warn({ method, path, why }, 'request refused: this replica does not lead');
    }),
  );
  const manager = new Manager({
    logger,
    metrics,
    identity: config.identity,
    http: { host: config.httpHost, port: config.httpPort },
    shutdownGracePeriodMs: config.shutdownGracePeriodMs,
    credentialRejected: () => credential?.rejected ?? false,
    ...(config.leaderElection
      ? {
          leaderElection: {
            store: apiLeaseStore(apiClient, config.operatorNamespace, config.leaseName),
            leaseDurationMs: config.leaseDurationMs,
            renewDeadlineMs: config.renewDeadlineMs,
            retryPeriodMs: config.retryPeriodMs,
          },
        }
      : {}),
  });
  const recorder = new EventRecorder(client, logger, config.identity);
  const keySignal = new SigningKeySignal({
    recorder,
    metrics,
    logger,
    operatorNamespace: config.operatorNamespace,
  });
  // The apiserver's trusted signing keys (undefined with --key-set-poll-interval=0s: key awareness off).
  // onChange is wired once the reconciler and the controller exist.
  let keysChanged: (change: KeySetChange) => Promise<void> = async () => {};
  const keys =
    config.keySetPollMs > 0
      ? new TrustedKeys({
          client,
          logger,
          now: Date.now,
          onRead: (trusted) => keySignal.trustedKeysRead(trusted),
          onChange: (change) => keysChanged(change),
        })
      : undefined;
  const copyCheck = new CopyCheck({
    client,
    now: Date.now,
    localServer: client.server,
    localCa: () => clusterCa(client),
    allowedServers: config.allowedCopyServers,
  });
  const healer = new SecretHealer({
    recheckCopy: (probe, spec) => copyCheck.check(probe, spec, true),
    client,
    recorder,
    metrics,
    logger,
    config,
    ledgerStore: new LedgerStore(client, config.operatorNamespace),
    canary: new TokensControllerCanary({
      client,
      logger,
      namespace: config.operatorNamespace,
      serviceAccountName: config.canaryServiceAccount,
      now: Date.now,
      ...(keys
        ? { keys, onSigner: (keyID, trusted, all) => keySignal.signerChecked(keyID, trusted, all) }
        : {}),
    }),
  });
  // A key change needs an apiserver restart, which breaks every watch: read the keys again then too.
  const informerOptions = (name: string) => ({
    name,
    logger,
    // Inside the current term when this replica leads (a standby reads, and acts on no change).
    onWatchError: () => {
      metrics.watchErrors.inc({ informer: name });
      void manager.inTerm(() => keys?.refresh());
    },
    onRelist: () => {
      metrics.relists.inc({ informer: name });
      void manager.inTerm(() => keys?.refresh());
    },
  });
  // One informer per watched namespace (or one for the cluster): watchNamespaces mode needs no
  // cluster-wide permission at all.
  const probeInformers = namespaces.map(
    (namespace) =>
      new Informer<AuthProbe>(
        apiListWatcher(apiClient, {
          groupVersionPath: `/apis/${AUTHPROBE_GROUP}/${AUTHPROBE_VERSION}`,
          resource: AUTHPROBE_PLURAL,
          namespace,
        }),
        informerOptions(`authprobes${namespace ? '/' + namespace : ''}`),
      ),
  );
  // Only our own probe pods are cached, never every pod (or Secret) of the cluster.
  const podInformers = namespaces.map(
    (namespace) =>
      new Informer<PodJson>(
        apiListWatcher(apiClient, {
          groupVersionPath: '/api/v1',
          resource: 'pods',
          namespace,
          labelSelector: `${LABEL_MANAGED_BY}=${MANAGED_BY_VALUE}`,
        }),
        informerOptions(`probe-pods${namespace ? '/' + namespace : ''}`),
      ),
  );
  const pods = unionCache(podInformers);
  // ServiceAccounts (metadata only): creating a missing account makes the AuthProbes that name it
  // check again at once. Secrets are never listed or watched (that keeps memory flat whatever the
  // cluster holds); a settling verdict about a Secret is noticed by the back-off (settleRecheckMs).
  const serviceAccountInformers = namespaces.map(
    (namespace) =>
      new Informer<KubeObject>(
        apiListWatcher(apiClient, {
          groupVersionPath: '/api/v1',
          resource: 'serviceaccounts',
          namespace,
          metadataOnly: true,
        }),
        informerOptions(`serviceaccounts${namespace ? '/' + namespace : ''}`),
      ),
  );
  const now = Date.now;
  const reconciler = new AuthProbeReconciler({
    client,
    probes: unionCache(probeInformers),
    checks: {
      Pod: new PodCheck({
        client,
        pods,
        logger,
        now,
        policy: {
          probeImage: config.probeImage,
          allowedImages: config.allowedProbeImages,
          allowedPriorityClasses: config.allowedPriorityClasses,
          allowedTolerationKeys: config.allowedTolerationKeys,
          allowedLabelPrefixes: config.allowedPodLabelPrefixes,
          allowedAnnotationPrefixes: config.allowedPodAnnotationPrefixes,
          maxCpu: config.maxProbeCpu,
          maxMemory: config.maxProbeMemory,
        },
      }),
      TokenReview: new TokenReviewCheckKind({ client, now, accounts: unionCache(serviceAccountInformers) }),
      Copy: copyCheck,
    },
    recorder,
    metrics,
    logger,
    healer,
    scope: {
      operatorNamespace: config.operatorNamespace,
      excludedNamespaces: config.excludedNamespaces,
      maxPerNamespace: config.maxAuthProbesPerNamespace,
    },
    ...(keys ? { keys } : {}),
    statusHeartbeatMs: config.statusHeartbeatMs,
    rotation: new RotationSignal({
      recorder,
      metrics,
      logger,
      operatorNamespace: config.operatorNamespace,
      namespaceThreshold: config.rotationSuspectNamespaces,
      windowMs: config.rotationSuspectWindowMs,
    }),
  });
  const controller = new Controller({
    name: 'authprobe',
    reconciler,
    logger,
    concurrency: config.concurrency,
    metrics,
    // While the apiserver rejects our own token every reconcile fails the same way; retry at a
    // steady pace instead of backing off for minutes, so work resumes soon after the token is re-issued.
    errorPolicy: (_key, err) => (isUnauthorized(err) ? { requeueAfterMs: 10_000 } : {}),
  });
  for (const informer of probeInformers) {
    manager.addInformer(informer);
    controller.watchPrimary(informer);
  }
  for (const informer of podInformers) {
    manager.addInformer(informer);
    controller.watchSecondary(informer, (pod) => {
      const owner = pod.metadata.labels?.[LABEL_PROBE];
      return owner ? [`${pod.metadata.namespace}/${owner}`] : [];
    });
  }
  for (const informer of serviceAccountInformers) {
    manager.addInformer(informer);
    // A deleted account takes its tokens with it: its AuthProbes are checked at once, even healthy ones
    // (this handler first, so the mark is set before the key is queued).
    informer.addHandlers({
      onDelete: (account) =>
        reconciler.accountDeleted(
          reconciler.dependents(account.metadata?.namespace ?? '', account.metadata?.name ?? ''),
        ),
    });
    controller.watchSecondary(informer, (account) => {
      const keys = reconciler.dependents(account.metadata?.namespace ?? '', account.metadata?.name ?? '');
      reconciler.dependenciesChanged(keys);
      return keys;
    });
  }
  manager.addController(controller);
  if (keys) {
    keysChanged = async (change) => {
      // A standby keeps its set current (it reads again after a watch error, so that once it leads it
      // compares with what it saw last) but the leader is the one that checks and reports: a standby's
      // Event would be refused by the fence and counted as a refused request.
      if (!manager.isLeader) return;
      const affected = reconciler.keysChanged(change.trusted);
      for (const key of affected) controller.enqueue(key);
      await keySignal.keysRetired(change, affected);
    };
    manager.addLeaderTask((signal) => keys.run(config.keySetPollMs, signal));
  }
  return manager;
}

/** The CA the operator trusts for its own apiserver (PEM), the one a bare-token copy is checked with. */
async function clusterCa(client: KubeClient): Promise<string | undefined> {
  const options: RequestOptions = {};
  await client.access.apply(options);
  const ca = options.ca;
  return ca === undefined ? undefined : Array.isArray(ca) ? ca.map(String).join('\n') : String(ca);
}

/** Reads several namespace-scoped informers as one cache. */
function unionCache<T extends { metadata?: { namespace?: string } }>(informers: Informer<T & object>[]) {
  if (informers.length === 1) return informers[0] as Informer<T & object>;
  return {
    get: (key: string) => {
      for (const informer of informers) {
        const hit = informer.get(key);
        if (hit) return hit;
      }
      return undefined;
    },
    list: () => informers.flatMap((informer) => informer.list()),
  } as unknown as Informer<T & object>;
}
