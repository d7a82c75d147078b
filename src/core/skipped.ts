/**
 * A file that a loader or a batch job could not use: the file it concerns and why, in words. Shared by every layer
 * that reads many files and goes on past bad ones (datasets, batch prediction, automatic masks, export, reports).
 */
export interface SkippedSample {
  readonly path: string;
  readonly reason: string;
}
