/**
 * `cluster:down` followed by `cluster:up` works, and the node comes back Ready with the pinned version.
 * Only meaningful for the project's own test cluster (test/cluster/); pointed at another cluster it is
 * skipped. Note: down removes everything, including images imported into containerd; up re-imports
 * the pause and toolbox images, and suites that need the operator image import it themselves.
 */
import { describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const REPO = path.resolve(import.meta.dirname, '../..');
const CLUSTER_DIR = process.env.AUTHPROBE_CLUSTER_DIR ?? '/var/lib/authprobe-cluster';
const pinned = /^K8S_VERSION=(\S+)$/m.exec(
  readFileSync(path.join(REPO, 'test/cluster/versions.env'), 'utf8'),
)?.[1];

const own =
  path.resolve((process.env.KUBECONFIG ?? '').split(':')[0] || '/nonexistent') ===
    path.join(CLUSTER_DIR, 'kubeconfig') && existsSync(path.join(CLUSTER_DIR, 'pids', 'kube-apiserver.pid'));

describe('test cluster lifecycle', () => {
  (own ? it : it.skip)(
    'cluster:down then cluster:up brings the node back Ready with the pinned version',
    async () => {
      await run('bash', [path.join(REPO, 'test/cluster/down.sh')], { timeout: 300_000, maxBuffer: 16 << 20 });
      expect(existsSync(path.join(CLUSTER_DIR, 'pids', 'kube-apiserver.pid'))).toBe(false);

      await run('bash', [path.join(REPO, 'test/cluster/up.sh')], { timeout: 900_000, maxBuffer: 16 << 20 });

      const { stdout } = await run('kubectl', ['get', 'nodes', '-o', 'json']);
      const nodes = (JSON.parse(stdout) as { items: NodeJson[] }).items;
      expect(nodes).toHaveLength(1);
      const node = nodes[0]!;
      expect(node.metadata.name).toBe('authprobe-node');
      expect(node.status.conditions.find((c) => c.type === 'Ready')?.status).toBe('True');
      expect(node.status.nodeInfo.kubeletVersion).toBe(pinned);

      const table = (await run('kubectl', ['get', 'nodes', '--no-headers'])).stdout;
      expect(table).toMatch(
        new RegExp(`^authprobe-node\\s+Ready\\s+\\S+\\s+\\S+\\s+${pinned?.replaceAll('.', '\\.')}\\s*$`, 'm'),
      );
    },
    1_200_000,
  );
});

interface NodeJson {
  metadata: { name: string };
  status: { conditions: { type: string; status: string }[]; nodeInfo: { kubeletVersion: string } };
}
