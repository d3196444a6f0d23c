import { describe, expect, it } from '@jest/globals';
import { ConfigError, loadConfig } from '../../../src/config/config.js';

describe('loadConfig', () => {
  it('uses defaults, then environment, then flags', () => {
    const defaults = loadConfig([], {});
    expect(defaults.leaseDurationMs).toBe(15_000);
    expect(defaults.watchNamespaces).toEqual([]);
    const fromEnv = loadConfig([], { AUTHPROBE_CONCURRENCY: '6', AUTHPROBE_WATCH_NAMESPACES: 'a, b' });
    expect(defaults.concurrency).toBe(8);
    expect(fromEnv.concurrency).toBe(6);
    expect(fromEnv.watchNamespaces).toEqual(['a', 'b']);
    const fromFlags = loadConfig(['--concurrency=2', '--lease-duration', '30s'], {
      AUTHPROBE_CONCURRENCY: '8',
    });
    expect(fromFlags.concurrency).toBe(2);
    expect(fromFlags.leaseDurationMs).toBe(30_000);
  });

  it.each([
    [['--concurrency=0'], 'concurrency', /whole number from 1 to 64/],
    [['--lease-duration=soon'], 'lease-duration', /not a duration; use a number with ms, s, m or h/],
    [['--log-level=loud'], 'log-level', /use one of trace, debug, info/],
    [['--leader-election=maybe'], 'leader-election', /must be true or false/],
    [['--watch-namespaces=Team_A'], 'watch-namespaces', /"Team_A", which is not a namespace name/],
    [['--renew-deadline=20s'], 'renew-deadline', /must be shorter than --lease-duration/],
    [['--colour=blue'], 'colour', /unknown setting --colour/],
    [['--http-port'], 'http-port', /needs a value/],
    [['--max-probe-memory=lots'], 'max-probe-memory', /not a positive quantity such as 100m/],
    [['--excluded-namespaces=Kube_System'], 'excluded-namespaces', /not a namespace name/],
    [['--max-authprobes-per-namespace=-1'], 'max-authprobes-per-namespace', /whole number from 0/],
  ])('rejects %j naming the setting', (argv, setting, message) => {
    let error: unknown;
    try {
      loadConfig(argv, {});
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).setting).toBe(setting);
    expect((error as ConfigError).message).toMatch(message);
  });

  it('bounds probe pods and namespaces by default: the operator image only, kube-system excluded', () => {
    const defaults = loadConfig([], {});
    expect(defaults).toMatchObject({
      allowedProbeImages: [],
      allowedPriorityClasses: [],
      allowedTolerationKeys: [],
      allowedPodLabelPrefixes: [],
      allowedPodAnnotationPrefixes: [],
      maxProbeCpu: 0.1,
      maxProbeMemory: 256 * 2 ** 20,
      excludedNamespaces: ['kube-system'],
      maxAuthProbesPerNamespace: 0,
      canaryServiceAccount: 'authprobe-canary',
    });
    const loosened = loadConfig([], {
      AUTHPROBE_ALLOWED_PROBE_IMAGES: 'registry.example/probes/*, mirror.example/authprobe:1',
      AUTHPROBE_EXCLUDED_NAMESPACES: '',
    });
    expect(loosened.allowedProbeImages).toEqual(['registry.example/probes/*', 'mirror.example/authprobe:1']);
    expect(loosened.excludedNamespaces).toEqual([]);
  });

  it('key awareness, the status heartbeat and the servers copies may be checked against', () => {
    const defaults = loadConfig([], {});
    expect(defaults).toMatchObject({
      keySetPollMs: 5_000,
      statusHeartbeatMs: 300_000,
      allowedCopyServers: [],
    });
    const set = loadConfig(
      [
        '--key-set-poll-interval=0s',
        '--status-heartbeat=0s',
        '--allowed-copy-servers=https://10.0.0.1:6443/,https://b.example',
      ],
      {},
    );
    expect(set).toMatchObject({
      keySetPollMs: 0,
      statusHeartbeatMs: 0,
      allowedCopyServers: ['https://10.0.0.1:6443', 'https://b.example'],
    });
    expect(() => loadConfig(['--allowed-copy-servers=http://10.0.0.1:6443'], {})).toThrow(/is not https/);
    expect(() => loadConfig(['--allowed-copy-servers=10.0.0.1'], {})).toThrow(/is not a URL/);
  });

  it('names the environment variable path too', () => {
    expect(() => loadConfig([], { AUTHPROBE_HTTP_PORT: '99999' })).toThrow(
      /--http-port="99999" must be a whole number/,
    );
  });
});
