/**
 * Is this Secret provably the token secret of the account the AuthProbe names? Only then is it read
 * for its token, reviewed, mounted into a probe pod, deleted or replaced. Pure: the caller reads the
 * secret and the ServiceAccount; the rule lives here, table-tested.
 */
import {
  ANNOTATION_SERVICE_ACCOUNT_NAME,
  ANNOTATION_SERVICE_ACCOUNT_UID,
  SECRET_TYPE_SERVICE_ACCOUNT_TOKEN,
} from '../api/labels.js';
import { ProbeReason } from '../api/reasons.js';
import { verdict, type Verdict } from '../api/verdict.js';

export interface SecretFacts {
  metadata: { name: string; namespace: string; annotations?: Record<string, string> };
  type?: string;
}

/**
 * undefined when the secret is the token secret of `serviceAccountName` (whose current uid is
 * `accountUid`, when the account was read); otherwise a False verdict naming what is wrong and the fix.
 * A missing uid annotation is accepted: the tokens controller writes it when it fills the secret, and a
 * secret it has not filled yet holds no token to protect.
 */
export function judgeTokenSecret(
  secret: SecretFacts,
  serviceAccountName: string,
  accountUid: string | undefined,
): Verdict | undefined {
  const where = `${secret.metadata.namespace}/${secret.metadata.name}`;
  if (secret.type !== SECRET_TYPE_SERVICE_ACCOUNT_TOKEN) {
    return verdict(
      ProbeReason.SecretNotServiceAccountToken,
      'False',
      `Secret ${where} is of type ${secret.type ?? '(none)'}, not ${SECRET_TYPE_SERVICE_ACCOUNT_TOKEN}, so it is ` +
        `not a ServiceAccount token secret: authprobe never reads, sends or changes it. Point ` +
        `spec.token.secretName at the account's token secret.`,
    );
  }
  const named = secret.metadata.annotations?.[ANNOTATION_SERVICE_ACCOUNT_NAME];
  if (named !== serviceAccountName) {
    return verdict(
      ProbeReason.SecretForOtherServiceAccount,
      'False',
      `Secret ${where} is the token secret of ServiceAccount ${named ?? '(none: no ' + ANNOTATION_SERVICE_ACCOUNT_NAME + ' annotation)'}, ` +
        `not of ${serviceAccountName} (spec.serviceAccountName): authprobe never uses or changes another ` +
        `account's token. Fix spec.serviceAccountName or spec.token.secretName.`,
    );
  }
  const uid = secret.metadata.annotations?.[ANNOTATION_SERVICE_ACCOUNT_UID];
  if (uid !== undefined && accountUid !== undefined && uid !== accountUid) {
    return verdict(
      ProbeReason.SecretForRecreatedServiceAccount,
      'False',
      `Secret ${where} was issued for an earlier ServiceAccount ${serviceAccountName} (uid ${uid}); the account ` +
        `now has uid ${accountUid}, so the apiserver rejects this token and kube-controller-manager will ` +
        `delete the secret. authprobe does not touch it: recreate the token secret for the current account.`,
    );
  }
  return undefined;
}
