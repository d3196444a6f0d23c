/**
 * Named points where tests make the process fail exactly there, to prove that crash-safety and
 * leadership hold at that step. Enabled only through the environment variable AUTHPROBE_FAILPOINTS,
 * a comma-separated list of `name` or `name=action`; unset in every real deployment. Actions:
 * - `kill` (the default): SIGKILL, as a crash would (no clean-up);
 * - `stop`: SIGSTOP, as a frozen VM or a long pause would; the process goes on where it stopped
 *   when it gets SIGCONT (once: a later pass through the same point goes on).
 */
export type FailpointName = 'before-secret-delete' | 'after-secret-delete';

const enabled = new Map<string, string>(
  (process.env.AUTHPROBE_FAILPOINTS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry) => {
      const [name = '', action = 'kill'] = entry.split('=');
      return [name, action] as const;
    }),
);

export function failpoint(name: FailpointName): void {
  const action = enabled.get(name);
  if (action === 'kill') process.kill(process.pid, 'SIGKILL');
  if (action === 'stop') {
    enabled.delete(name);
    process.kill(process.pid, 'SIGSTOP');
  }
}
