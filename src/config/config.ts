import { parseDuration } from '../api/duration.js';
import { parseQuantity } from '../api/quantity.js';
import { hostname } from 'node:os';

/**
 * Operator settings. Every setting can be given as a flag (`--lease-duration=15s`) or an
 * environment variable (`AUTHPROBE_LEASE_DURATION=15s`); a flag wins. Invalid values stop
 * start-up with a message naming the setting and what it accepts.
 */
export interface OperatorConfig {
  /** Namespaces whose AuthProbes are watched and healed; empty means every namespace. */
  watchNamespaces: string[];
  /** Namespace the operator runs in (leases, cluster-level Events). */
  operatorNamespace: string;
  identity: string;
  leaderElection: boolean;
  leaseName: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  concurrency: number;
  httpPort: number;
  httpHost: string;
  logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
  /** Image for probe pods when an AuthProbe does not name one. */
  probeImage: string;
  shutdownGracePeriodMs: number;
  /** Cluster-wide ceiling of heals per hour across every AuthProbe. */
  healBudgetPerHour: number;
  /** How many distinct namespaces turning to 401 within the window suggest a key rotation. */
  rotationSuspectNamespaces: number;
  rotationSuspectWindowMs: number;
  /** A permission-less account in the operator's namespace whose token secrets prove the tokens controller works. */
  canaryServiceAccount: string;
  /** How often the apiserver's published signing keys (/openid/v1/jwks) are read; 0 turns key awareness off. */
  keySetPollMs: number;
  /** An unchanged verdict is written to status at most this often (0: every check is written). */
  statusHeartbeatMs: number;
  /** check Copy: servers (origins) a copy may be checked against besides this cluster's. */
  allowedCopyServers: string[];
  /** Images probe pods may use besides probeImage (a trailing `*` is a prefix). */
  allowedProbeImages: string[];
  allowedPriorityClasses: string[];
  allowedTolerationKeys: string[];
  allowedPodLabelPrefixes: string[];
  allowedPodAnnotationPrefixes: string[];
  /** Ceilings of a probe pod's requests and limits: cores and bytes. */
  maxProbeCpu: number;
  maxProbeMemory: number;
  /** Namespaces whose AuthProbes are reported, never run (the operator's own always is). */
  excludedNamespaces: string[];
  /** AuthProbes run per namespace; 0 for no limit. */
  maxAuthProbesPerNamespace: number;
}

export class ConfigError extends Error {
  constructor(
    readonly setting: string,
    message: string,
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}

interface Setting<K extends keyof OperatorConfig> {
  key: K;
  flag: string;
  description: string;
  default: (env: NodeJS.ProcessEnv) => string;
  parse: (raw: string, flag: string) => OperatorConfig[K];
}

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

export function parseDurationSetting(raw: string, flag: string): number {
  const ms = parseDuration(raw);
  if (ms === undefined)
    throw new ConfigError(
      flag,
      `--${flag}="${raw}" is not a duration; use a number with ms, s, m or h, e.g. 15s, 2m or 1m30s`,
    );
  return ms;
}

function integer(min: number, max: number) {
  return (raw: string, flag: string): number => {
    const value = Number(raw);
    if (!/^\d+$/.test(raw.trim()) || value < min || value > max)
      throw new ConfigError(flag, `--${flag}="${raw}" must be a whole number from ${min} to ${max}`);
    return value;
  };
}

function boolean(raw: string, flag: string): boolean {
  if (/^(true|1|yes)$/i.test(raw)) return true;
  if (/^(false|0|no)$/i.test(raw)) return false;
  throw new ConfigError(flag, `--${flag}="${raw}" must be true or false`);
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

function namespaceList(raw: string, flag: string): string[] {
  const names = list(raw);
  const bad = names.find((n) => !DNS_LABEL.test(n));
  if (bad)
    throw new ConfigError(
      flag,
      `--${flag} has "${bad}", which is not a namespace name (lowercase letters, digits and '-')`,
    );
  return names;
}

function namespaceName(raw: string, flag: string): string {
  if (!DNS_LABEL.test(raw))
    throw new ConfigError(
      flag,
      `--${flag}="${raw}" is not a namespace name (lowercase letters, digits and '-')`,
    );
  return raw;
}

function list(raw: string): string[] {
  return raw
    .split(',')
    .map((n) => n.trim())
    .filter(Boolean);
}

function quantity(raw: string, flag: string): number {
  const value = parseQuantity(raw);
  if (value === undefined || value <= 0)
    throw new ConfigError(
      flag,
      `--${flag}="${raw}" is not a positive quantity such as 100m, 0.5, 256Mi or 1Gi`,
    );
  return value;
}

function nonEmpty(raw: string, flag: string): string {
  if (!raw.trim()) throw new ConfigError(flag, `--${flag} must not be empty`);
  return raw.trim();
}

const SETTINGS: { [K in keyof OperatorConfig]: Setting<K> } = {
  watchNamespaces: {
    key: 'watchNamespaces',
    flag: 'watch-namespaces',
    description: 'comma-separated namespaces to watch; empty for all',
    default: () => '',
    parse: namespaceList,
  },
  operatorNamespace: {
    key: 'operatorNamespace',
    flag: 'operator-namespace',
    description: 'namespace the operator runs in',
    default: (env) => env.POD_NAMESPACE ?? 'authprobe-system',
    parse: namespaceName,
  },
  identity: {
    key: 'identity',
    flag: 'identity',
    description: 'leader-election identity',
    default: (env) => env.POD_NAME ?? `${hostname()}-${process.pid}`,
    parse: nonEmpty,
  },
  leaderElection: {
    key: 'leaderElection',
    flag: 'leader-election',
    description: 'elect one active replica via a Lease',
    default: () => 'true',
    parse: boolean,
  },
  leaseName: {
    key: 'leaseName',
    flag: 'lease-name',
    description: 'name of the leader Lease',
    default: () => 'authprobe-operator',
    parse: namespaceName,
  },
  leaseDurationMs: {
    key: 'leaseDurationMs',
    flag: 'lease-duration',
    description: 'time before a standby takes over',
    default: () => '15s',
    parse: parseDurationSetting,
  },
  renewDeadlineMs: {
    key: 'renewDeadlineMs',
    flag: 'renew-deadline',
    description: 'time the leader keeps retrying a renewal',
    default: () => '10s',
    parse: parseDurationSetting,
  },
  retryPeriodMs: {
    key: 'retryPeriodMs',
    flag: 'retry-period',
    description: 'interval between lease attempts',
    default: () => '2s',
    parse: parseDurationSetting,
  },
  concurrency: {
    key: 'concurrency',
    flag: 'concurrency',
    description: 'AuthProbes reconciled at once',
    default: () => '8',
    parse: integer(1, 64),
  },
  httpPort: {
    key: 'httpPort',
    flag: 'http-port',
    description: 'port of /healthz, /readyz, /metrics',
    default: () => '8080',
    parse: integer(1, 65535),
  },
  httpHost: {
    key: 'httpHost',
    flag: 'http-host',
    description: 'address the HTTP server binds',
    default: () => '0.0.0.0',
    parse: nonEmpty,
  },
  logLevel: {
    key: 'logLevel',
    flag: 'log-level',
    description: 'trace|debug|info|warn|error|fatal|silent',
    default: () => 'info',
    parse: (raw, flag) => {
      if (!(LOG_LEVELS as readonly string[]).includes(raw))
        throw new ConfigError(
          flag,
          `--${flag}="${raw}" is not a log level; use one of ${LOG_LEVELS.join(', ')}`,
        );
      return raw as OperatorConfig['logLevel'];
    },
  },
  probeImage: {
    key: 'probeImage',
    flag: 'probe-image',
    description: 'image of probe pods (defaults to the operator image)',
    default: (env) => env.AUTHPROBE_IMAGE ?? '',
    parse: (raw) => raw.trim(),
  },
  shutdownGracePeriodMs: {
    key: 'shutdownGracePeriodMs',
    flag: 'shutdown-grace-period',
    description: 'time to finish work on SIGTERM',
    default: () => '20s',
    parse: parseDurationSetting,
  },
  healBudgetPerHour: {
    key: 'healBudgetPerHour',
    flag: 'heal-budget-per-hour',
    description: 'cluster-wide heals per hour',
    default: () => '30',
    parse: integer(0, 10000),
  },
  rotationSuspectNamespaces: {
    key: 'rotationSuspectNamespaces',
    flag: 'rotation-suspect-namespaces',
    description: 'namespaces rejecting at once that suggest a key rotation',
    default: () => '3',
    parse: integer(2, 1000),
  },
  rotationSuspectWindowMs: {
    key: 'rotationSuspectWindowMs',
    flag: 'rotation-suspect-window',
    description: 'window for the rotation signal',
    default: () => '10m',
    parse: parseDurationSetting,
  },
  canaryServiceAccount: {
    key: 'canaryServiceAccount',
    flag: 'canary-service-account',
    description: 'account (own namespace) whose token secrets prove the tokens controller works',
    default: () => 'authprobe-canary',
    parse: namespaceName,
  },
  keySetPollMs: {
    key: 'keySetPollMs',
    flag: 'key-set-poll-interval',
    description: "how often the apiserver's trusted signing keys are read (0s: off)",
    default: () => '5s',
    parse: parseDurationSetting,
  },
  statusHeartbeatMs: {
    key: 'statusHeartbeatMs',
    flag: 'status-heartbeat',
    description: 'an unchanged verdict is written to status at most this often (0s: every check)',
    default: () => '5m',
    parse: parseDurationSetting,
  },
  allowedCopyServers: {
    key: 'allowedCopyServers',
    flag: 'allowed-copy-servers',
    description:
      'servers a copied token may be checked against besides this cluster (comma-separated https origins)',
    default: () => '',
    parse: (raw, flag) =>
      list(raw).map((entry) => {
        let url: URL;
        try {
          url = new URL(entry);
        } catch {
          throw new ConfigError(
            flag,
            `--${flag}: "${entry}" is not a URL; use https origins such as https://10.0.0.1:6443`,
          );
        }
        if (url.protocol !== 'https:')
          throw new ConfigError(flag, `--${flag}: "${entry}" is not https; copies are only checked over TLS`);
        return url.origin;
      }),
  },
  allowedProbeImages: {
    key: 'allowedProbeImages',
    flag: 'allowed-probe-images',
    description: "probe images allowed besides the operator's own (comma-separated; trailing * = prefix)",
    default: () => '',
    parse: list,
  },
  allowedPriorityClasses: {
    key: 'allowedPriorityClasses',
    flag: 'allowed-priority-classes',
    description: 'priority classes probe pods may ask for',
    default: () => '',
    parse: list,
  },
  allowedTolerationKeys: {
    key: 'allowedTolerationKeys',
    flag: 'allowed-toleration-keys',
    description: 'taint keys probe pods may tolerate',
    default: () => '',
    parse: list,
  },
  allowedPodLabelPrefixes: {
    key: 'allowedPodLabelPrefixes',
    flag: 'allowed-pod-label-prefixes',
    description: 'label key prefixes spec.podTemplate.labels may use',
    default: () => '',
    parse: list,
  },
  allowedPodAnnotationPrefixes: {
    key: 'allowedPodAnnotationPrefixes',
    flag: 'allowed-pod-annotation-prefixes',
    description: 'annotation key prefixes spec.podTemplate.annotations may use',
    default: () => '',
    parse: list,
  },
  maxProbeCpu: {
    key: 'maxProbeCpu',
    flag: 'max-probe-cpu',
    description: "ceiling of a probe pod's cpu requests and limits",
    default: () => '100m',
    parse: quantity,
  },
  maxProbeMemory: {
    key: 'maxProbeMemory',
    flag: 'max-probe-memory',
    description: "ceiling of a probe pod's memory requests and limits",
    default: () => '256Mi',
    parse: quantity,
  },
  excludedNamespaces: {
    key: 'excludedNamespaces',
    flag: 'excluded-namespaces',
    description: "namespaces whose AuthProbes are reported, not run (the operator's own always is)",
    default: () => 'kube-system',
    parse: namespaceList,
  },
  maxAuthProbesPerNamespace: {
    key: 'maxAuthProbesPerNamespace',
    flag: 'max-authprobes-per-namespace',
    description: 'AuthProbes run per namespace (0: no limit)',
    default: () => '0',
    parse: integer(0, 100000),
  },
};

const envName = (flag: string): string => `AUTHPROBE_${flag.toUpperCase().replace(/-/g, '_')}`;

export function describeSettings(): string {
  return Object.values(SETTINGS)
    .map((s) => `  --${s.flag.padEnd(30)} ${envName(s.flag).padEnd(40)} ${s.description}`)
    .join('\n');
}

/** Parses flags (`--name=value` or `--name value`) over environment variables over defaults. */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): OperatorConfig {
  const byFlag = new Map(Object.values(SETTINGS).map((s) => [s.flag, s] as const));
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const match = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!match)
      throw new ConfigError('arguments', `unexpected argument "${arg}"; settings are given as --name=value`);
    const name = match[1] as string;
    if (!byFlag.has(name))
      throw new ConfigError(name, `unknown setting --${name}; known settings:\n${describeSettings()}`);
    let value = match[2];
    if (value === undefined) {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) throw new ConfigError(name, `--${name} needs a value`);
      value = next;
      i++;
    }
    flags.set(name, value);
  }
  const config = {} as Record<string, unknown>;
  for (const setting of Object.values(SETTINGS)) {
    const raw = flags.get(setting.flag) ?? env[envName(setting.flag)] ?? setting.default(env);
    config[setting.key] = (setting.parse as (raw: string, flag: string) => unknown)(raw, setting.flag);
  }
  const result = config as unknown as OperatorConfig;
  if (result.renewDeadlineMs >= result.leaseDurationMs)
    throw new ConfigError('renew-deadline', `--renew-deadline must be shorter than --lease-duration`);
  if (result.retryPeriodMs >= result.renewDeadlineMs)
    throw new ConfigError('retry-period', `--retry-period must be shorter than --renew-deadline`);
  return result;
}
