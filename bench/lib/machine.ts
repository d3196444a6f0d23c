import os from 'node:os';
import { apiJson, SERVER } from './apiserver.ts';
import { round } from './stats.ts';

/** The machine, Node and Kubernetes the figures were measured on. */
export async function machine(): Promise<Record<string, unknown>> {
  const version = await apiJson<{ gitVersion?: string }>('GET', '/version').catch(() => ({
    gitVersion: '?',
  }));
  return {
    nproc: os.availableParallelism(),
    cpu: os.cpus()[0]?.model ?? '?',
    memoryGiB: round(os.totalmem() / 1024 ** 3, 1),
    kernel: os.release(),
    node: process.version,
    kubernetes: version.gitVersion,
    apiserver: SERVER.host,
  };
}
