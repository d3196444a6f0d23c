/** Legacy service-account token Secrets (the heal phase and the TokenReview checks use them). */
import { apiJson } from './apiserver.ts';
import { applyObjects } from './kubectl.ts';
import { legacyTokenSecret, serviceAccount } from './manifests.ts';
import { createNamespace } from './namespaces.ts';
import { waitFor } from './wait.ts';

/** The base64 token the tokens controller put into a Secret, if it did yet. */
const tokenData = async (ns: string, name: string): Promise<string | undefined> =>
  (await apiJson<{ data?: { token?: string } }>('GET', `/api/v1/namespaces/${ns}/secrets/${name}`)).data
    ?.token;

/** Legacy token Secrets for a ServiceAccount; resolves once the tokens controller filled them. */
export async function createLegacyTokenSecrets(ns: string, sa: string, names: string[]): Promise<void> {
  if (!names.length) return;
  await applyObjects(names.map((name) => legacyTokenSecret(ns, name, sa)));
  for (const name of names) {
    await waitFor(`secret ${ns}/${name} to be filled`, 60_000, async () =>
      (await tokenData(ns, name)) ? true : undefined,
    );
  }
}

/** A new bench-<prefix>-* namespace with the ServiceAccount `app` and filled legacy token Secrets for it. */
export async function createTokenNamespace(prefix: string, secretNames: string[]): Promise<string> {
  const ns = await createNamespace(prefix);
  await applyObjects([serviceAccount(ns)]);
  await createLegacyTokenSecrets(ns, 'app', secretNames);
  return ns;
}

export async function readToken(ns: string, name: string): Promise<string> {
  const token = Buffer.from((await tokenData(ns, name)) ?? '', 'base64')
    .toString('utf8')
    .trim();
  if (!token) throw new Error(`secret ${ns}/${name} holds no token`);
  return token;
}
