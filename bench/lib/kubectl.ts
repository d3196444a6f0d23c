import { spawn } from 'node:child_process';

export function kubectl(args: string[], input?: string, timeoutMs = 600_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('kubectl', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(stdout);
      else
        reject(new Error(`kubectl ${args.slice(0, 3).join(' ')} failed (${code}): ${stderr.slice(0, 500)}`));
    });
    child.stdin.end(input ?? '');
  });
}

/** `kubectl <verb> -f -` with the objects as one v1 List on stdin. */
const kubectlObjects = (verb: 'apply' | 'create', items: unknown[]): Promise<string> =>
  kubectl([verb, '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));

export const applyObjects = (objects: unknown[]): Promise<string> => kubectlObjects('apply', objects);

/** Creates objects with `parallel` concurrent `kubectl create` (one POST per object, no GET first). */
export async function createObjects(objects: unknown[], parallel: number): Promise<void> {
  const chunk = Math.ceil(objects.length / parallel);
  const parts: unknown[][] = [];
  for (let i = 0; i < objects.length; i += chunk) parts.push(objects.slice(i, i + chunk));
  await Promise.all(parts.map((items) => kubectlObjects('create', items)));
}
