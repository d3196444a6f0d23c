import { randomBytes } from 'node:crypto';

/** Six hex digits that make a namespace, an operator identity or a scratch directory unique. */
export const randomSuffix = (): string => randomBytes(3).toString('hex');
