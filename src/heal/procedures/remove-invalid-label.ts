import { LABEL_LEGACY_TOKEN_INVALID_SINCE } from '../../api/labels.js';
import { EventReason, HealAction, HealReason, ProbeReason } from '../../api/reasons.js';
import { isConflict } from '../../kube/errors.js';
import { verdict } from '../../api/verdict.js';
import { apiPaths, type SecretJson } from '../../kube/resources.js';
import type { HealContext, HealProcedure, HealServices, ProcedureResult } from './procedure.js';

/**
 * heal.invalidatedLegacyToken Revalidate: removes the legacy cleaner's label, with a resourceVersion
 * precondition, so the apiserver accepts the same token again. Nothing is deleted.
 */
export class RemoveInvalidLabel implements HealProcedure {
  readonly kind = HealAction.LabelRemoved;

  constructor(private readonly services: HealServices) {}

  async begin(ctx: HealContext, secret: SecretJson): Promise<ProcedureResult> {
    const { client, recorder } = this.services;
    const name = secret.metadata.name;
    try {
      await client.mergePatch(
        apiPaths.secret(ctx.probe.metadata.namespace, name),
        {
          metadata: {
            resourceVersion: secret.metadata.resourceVersion,
            labels: { [LABEL_LEGACY_TOKEN_INVALID_SINCE]: null },
          },
        },
        { timeoutMs: 15_000 },
      );
    } catch (err) {
      if (!isConflict(err)) throw err;
      // The secret changed after the rejection was confirmed: someone else is acting on it.
      await recorder.record(
        ctx.target,
        'Warning',
        EventReason.HealAborted,
        `Secret ${name} changed after the rejection was confirmed; its label was not removed. Probing again.`,
      );
      return {
        kind: 'aborted',
        verdict: verdict(
          ProbeReason.ProbePending,
          'Unknown',
          `Secret ${name} changed during the heal; probing again.`,
        ),
      };
    }
    await recorder.record(
      ctx.target,
      'Normal',
      EventReason.TokenRevalidated,
      `Removed ${LABEL_LEGACY_TOKEN_INVALID_SINCE} from secret ${name}; the apiserver accepts its token again.`,
    );
    return {
      kind: 'healed',
      action: HealAction.LabelRemoved,
      verdict: verdict(
        HealReason.Healed,
        'True',
        `Removed ${LABEL_LEGACY_TOKEN_INVALID_SINCE} from secret ${name}. Another check confirms it now.`,
      ),
    };
  }
}
