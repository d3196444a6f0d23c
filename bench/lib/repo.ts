import path from 'node:path';

/** The repository root: dist/, crds/ and test/cluster/ are used from it. */
export const REPO = path.resolve(import.meta.dirname, '../..');
