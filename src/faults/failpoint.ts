/**
 * Named points where tests can make the process die as a crash would (SIGKILL, no clean-up), to
 * prove that crash-safety holds at exactly that step. Enabled only through the environment variable
 * AUTHPROBE_FAILPOINTS (comma-separated names); unset in every real deployment.
 */
const enabled = new Set(
  (process.env.AUTHPROBE_FAILPOINTS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
);

export function failpoint(name: 'after-secret-delete'): void {
  if (enabled.has(name)) process.kill(process.pid, 'SIGKILL');
}
