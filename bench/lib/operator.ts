/** The operator under test as a host process from dist/, one fresh process per phase (or round). */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import path from 'node:path';
import { load } from 'js-yaml';
import { createNamespace } from './namespaces.ts';
import { randomSuffix } from './names.ts';
import { REPO } from './repo.ts';
import { waitFor } from './wait.ts';

export interface Operator {
  pid: number;
  port: number;
  logFile: string;
  child: ChildProcess;
  /** Its inspector's port on 127.0.0.1, when started with `inspect`. */
  inspectorPort?: number;
  metrics(): Promise<string>;
  stop(): Promise<void>;
}

export interface OperatorOptions {
  /** Part of its identity and log file name. */
  name: string;
  /** The probe image (AUTHPROBE_IMAGE). */
  image: string;
  /** The one namespace it watches. */
  namespace: string;
  /** More environment, over the defaults. */
  env?: Record<string, string>;
  /** Open its inspector on 127.0.0.1 (for a forced garbage collection: lib/inspector.ts). */
  inspect?: boolean;
}

/**
 * The Node.js options the chart gives the operator (operator.nodeOptions in its values.yaml), so that
 * the bench measures the operator as it ships.
 */
export function chartNodeOptions(): string[] {
  const values = load(readFileSync(path.join(REPO, 'charts/authprobe-operator/values.yaml'), 'utf8')) as {
    operator?: { nodeOptions?: string };
  };
  return (values.operator?.nodeOptions ?? '').split(/\s+/).filter(Boolean);
}

const started: Operator[] = [];
let nextPort = 18_700 + Math.floor(Math.random() * 200);

/** Starts an operator and resolves once it serves /healthz. */
export async function startOperator({
  name,
  image,
  namespace,
  env,
  inspect = false,
}: OperatorOptions): Promise<Operator> {
  // Its own namespace (Lease, tokens-controller canary, heal ledger) is never the one it probes: an
  // operator does not run AuthProbes in its own namespace.
  const ownNamespace = await createNamespace(`op-${name.toLowerCase().replace(/[^a-z0-9-]/g, '-')}`);
  const port = nextPort++;
  const inspectorPort = inspect ? port + 1000 : undefined;
  const inspectArgs = inspectorPort ? [`--inspect=127.0.0.1:${inspectorPort}`] : [];
  const identity = `bench-${name}-${randomSuffix()}`;
  const logFile = `/tmp/authprobe-${identity}.log`;
  const out = createWriteStream(logFile);
  const child = spawn(
    process.execPath,
    [...chartNodeOptions(), ...inspectArgs, path.join(REPO, 'dist/cli/main.js'), 'operator'],
    {
      env: {
        ...process.env,
        AUTHPROBE_IMAGE: image,
        AUTHPROBE_IDENTITY: identity,
        AUTHPROBE_HTTP_PORT: String(port),
        AUTHPROBE_HTTP_HOST: '127.0.0.1',
        AUTHPROBE_LOG_LEVEL: 'info',
        AUTHPROBE_WATCH_NAMESPACES: namespace,
        AUTHPROBE_OPERATOR_NAMESPACE: ownNamespace,
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  child.stdout?.pipe(out);
  child.stderr?.pipe(out);
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const op: Operator = {
    pid: child.pid as number,
    port,
    logFile,
    child,
    inspectorPort,
    async metrics() {
      const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) });
      return res.text();
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
        await exited;
        clearTimeout(killer);
      }
    },
  };
  started.push(op);
  await waitFor(
    `operator ${identity} to serve /healthz`,
    30_000,
    async () => {
      if (child.exitCode !== null) throw new Error(`operator exited (${child.exitCode}); see ${logFile}`);
      const res = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined);
      return res?.ok ? true : undefined;
    },
    250,
  );
  return op;
}

/** Stops every operator started so far (those already stopped are left alone). */
export async function stopOperators(): Promise<void> {
  for (const op of started) await op.stop().catch(() => undefined);
}

/** The log files of every operator started so far. */
export const operatorLogFiles = (): string[] => started.map((o) => o.logFile);

/** The sum of a metric's samples (every label set) in a Prometheus text exposition. */
export function metricSum(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) sum += Number(line.split(' ').pop());
  }
  return sum;
}

/** A metric's samples summed by the value of one label (e.g. authprobe_probes_total by authprobe). */
export function metricByLabel(text: string, name: string, label: string): Map<string, number> {
  const out = new Map<string, number>();
  const labelRe = new RegExp(`[{,]${label}="([^"]*)"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const value = labelRe.exec(line)?.[1];
    if (value === undefined) continue;
    out.set(value, (out.get(value) ?? 0) + Number(line.split(' ').pop()));
  }
  return out;
}

/** How many series a Prometheus text exposition holds: its sample lines, not the # HELP / # TYPE ones. */
export interface SeriesCount {
  all: number;
  /** Those of the authprobe_* metrics. */
  authprobe: number;
  /** Those with an `authprobe` label: one AuthProbe's own (removed when it is deleted). */
  perAuthProbe: number;
  /** By metric name as exposed (a histogram's _bucket, _sum and _count apart). */
  byName: Record<string, number>;
}

export function countSeries(text: string): SeriesCount {
  const out: SeriesCount = { all: 0, authprobe: 0, perAuthProbe: 0, byName: {} };
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const name = /^[^{ ]+/.exec(line)?.[0] ?? line;
    out.all++;
    out.byName[name] = (out.byName[name] ?? 0) + 1;
    if (name.startsWith('authprobe_')) out.authprobe++;
    if (/[{,]authprobe="/.test(line)) out.perAuthProbe++;
  }
  return out;
}
