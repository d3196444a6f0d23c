import type { Logger } from 'pino';

/**
 * Tracks whether the apiserver currently rejects the operator's own token. After an abrupt
 * signing-key change the operator is locked out like every other pod until the kubelet re-issues
 * its projected token; it must say so (log, /readyz, metric) and carry on retrying rather than
 * exit, since a restart would not bring a new token any sooner.
 */
export class CredentialWatch {
  private state = false;
  private readonly listeners: Array<(rejected: boolean) => void> = [];

  constructor(private readonly logger: Logger) {}

  get rejected(): boolean {
    return this.state;
  }

  onChange(listener: (rejected: boolean) => void): void {
    this.listeners.push(listener);
  }

  observe(httpStatus: number): void {
    const rejected = httpStatus === 401 ? true : httpStatus >= 200 && httpStatus < 500 ? false : this.state;
    if (rejected === this.state) return;
    this.state = rejected;
    if (rejected) {
      this.logger.error(
        "the apiserver rejects the operator's own token (401): it cannot probe or heal until the kubelet re-issues its projected token; retrying with back-off",
      );
    } else {
      this.logger.info("the apiserver accepts the operator's token again; resuming");
    }
    this.listeners.forEach((listener) => listener(rejected));
  }
}
