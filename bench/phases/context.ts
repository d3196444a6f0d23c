import type { Sizes } from '../options.ts';
import type { Results } from '../report/document.ts';

/** What a phase gets: the sizes of the mode, the probe image, and the results to put its figures in. */
export interface PhaseContext {
  sizes: Sizes;
  image: string;
  /** A phase sets results[its name], also partly before it fails, so what it measured is kept. */
  results: Results;
}
