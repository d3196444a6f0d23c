/** CPU time and memory of processes, from /proc. */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { median, round } from './stats.ts';
import { sleep } from './wait.ts';

let clockTicks = 100;

/** Reads the kernel's clock ticks per second (getconf CLK_TCK), which cpuSeconds divides by. */
export async function readClockTicks(): Promise<void> {
  clockTicks = Number((await promisify(execFile)('getconf', ['CLK_TCK'])).stdout.trim()) || 100;
}

/** CPU seconds (user + system) of a process, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // after "pid (comm) ": state is field 3, utime field 14, stime field 15 (1-based)
  return (Number(fields[11]) + Number(fields[12])) / clockTicks;
}

/**
 * CPU seconds of the test cluster's kube-apiserver plus etcd, from their pid files, or undefined when
 * the cluster in KUBECONFIG is not this machine's test cluster.
 */
export function controlPlaneCpu(): number | undefined {
  try {
    return ['kube-apiserver', 'etcd'].reduce(
      (sum, name) =>
        sum + cpuSeconds(Number(readFileSync(`/var/lib/authprobe-cluster/pids/${name}.pid`, 'utf8').trim())),
      0,
    );
  } catch {
    return undefined;
  }
}

/** Control-plane CPU seconds since `before` (a controlPlaneCpu()), undefined when either is unknown. */
export const controlPlaneCpuSince = (before: number | undefined): number | undefined => {
  const after = controlPlaneCpu();
  return before === undefined || after === undefined ? undefined : after - before;
};

/** A /proc/<pid>/status field in kB. */
const statusKb = (status: string, field: string): number =>
  Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);

/** VmRSS and VmHWM of a process in MiB, from /proc/<pid>/status. */
export function memory(pid: number): { rssMiB: number; hwmMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return {
    rssMiB: round(statusKb(status, 'VmRSS') / 1024, 1),
    hwmMiB: round(statusKb(status, 'VmHWM') / 1024, 1),
  };
}

/**
 * RSS split by kind, in MiB: anonymous memory (heap, stacks: what the process allocated) and file-backed
 * pages (the node binary and libraries as far as they were run: the kernel may drop them any time).
 */
export function rssKinds(pid: number): { anonMiB: number; fileMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return {
    anonMiB: round(statusKb(status, 'RssAnon') / 1024, 1),
    fileMiB: round((statusKb(status, 'RssFile') + statusKb(status, 'RssShmem')) / 1024, 1),
  };
}

/** The median of `count` VmRSS samples one second apart, with their count and VmHWM after the last. */
export async function rssMedian(
  pid: number,
  count = 20,
): Promise<{ medianRssMiB: number; samples: number; hwmMiB: number }> {
  const rss: number[] = [];
  for (let i = 0; i < count; i++) {
    rss.push(memory(pid).rssMiB);
    await sleep(1000);
  }
  return { medianRssMiB: round(median(rss), 1), samples: rss.length, hwmMiB: memory(pid).hwmMiB };
}
