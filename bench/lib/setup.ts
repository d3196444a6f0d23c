/** What every run needs first: the CRD in the cluster, dist/ and the probe image. */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { kubectl } from './kubectl.ts';
import { log } from './log.ts';
import { REPO } from './repo.ts';

const execFileP = promisify(execFile);

/** Applies the AuthProbe CRD and waits until it is Established. */
export async function installCrd(): Promise<void> {
  await kubectl([
    'apply',
    '--server-side',
    '--force-conflicts',
    '-f',
    path.join(REPO, 'crds/authprobe.io_authprobes.yaml'),
  ]);
  await kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd/authprobes.authprobe.io']);
}

/** Builds dist/ (npm run build) unless dist/cli/main.js exists. */
export async function buildDistIfMissing(): Promise<void> {
  if (!existsSync(path.join(REPO, 'dist/cli/main.js')))
    await execFileP('npm', ['run', '-s', 'build'], { cwd: REPO });
}

/** Builds dist/ and the probe image with test/cluster/image.sh; resolves to the image it printed last. */
export async function buildProbeImage(): Promise<string> {
  log('building dist/ and the probe image (test/cluster/image.sh)');
  const { stdout } = await execFileP('bash', [path.join(REPO, 'test/cluster/image.sh')], {
    cwd: REPO,
    maxBuffer: 16 * 1024 * 1024,
    timeout: 15 * 60_000,
  });
  return stdout.trim().split('\n').pop() ?? '';
}
