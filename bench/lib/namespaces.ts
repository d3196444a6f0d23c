/** The bench-* namespaces: every one created is remembered, to be deleted at the end. */
import { apiRequest } from './apiserver.ts';
import { applyObjects, kubectl } from './kubectl.ts';
import { log } from './log.ts';
import { randomSuffix } from './names.ts';
import { waitFor } from './wait.ts';

const created: string[] = [];

export async function createNamespace(prefix: string): Promise<string> {
  const name = `bench-${prefix}-${randomSuffix()}`;
  await applyObjects([
    {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name, labels: { 'authprobe.io/bench': 'true' } },
    },
  ]);
  created.push(name);
  return name;
}

/** Deletes the namespaces (errors ignored); with `waitMs`, waits until they are gone (a timeout is logged). */
export async function deleteNamespaces(names: string[], waitMs = 0): Promise<void> {
  for (const name of names) {
    await kubectl(['delete', 'namespace', name, '--wait=false', '--ignore-not-found']).catch(() => undefined);
  }
  if (waitMs) {
    await waitFor(
      'bench namespaces to be gone',
      waitMs,
      async () => {
        for (const name of names) {
          const res = await apiRequest('GET', `/api/v1/namespaces/${name}`);
          if (res.status !== 404) return undefined;
        }
        return true;
      },
      2000,
    ).catch((err) => log(String(err)));
  }
}

/** Deletes every namespace createNamespace made, without waiting. */
export const deleteCreatedNamespaces = (): Promise<void> => deleteNamespaces(created);
