import { SegkitError } from "../core/errors.js";
import type { LossConfig } from "../losses/registry.js";

type Expanded = { loss: string; options?: object } | { sum: readonly { loss: LossConfig; weight?: number }[] };

const COMPOUND: Record<string, LossConfig> = {
  "ce+dice": { sum: [{ loss: "ce" }, { loss: "dice" }] },
  "bce+dice": { sum: [{ loss: "bce" }, { loss: "dice" }] },
};

/**
 * The loss configuration the loop trains with: `config` with the dataset's ignore index given to every base loss
 * (unless it sets its own) and `classWeights` to every cross-entropy term. Names are expanded to objects (`"ce+dice"`
 * to its `{ sum }`). Throws a SegkitError when class weights are given but the loss has no cross-entropy term, or a
 * cross-entropy term already has its own.
 */
export function resolveLossConfig(
  config: LossConfig,
  ignoreIndex: number,
  classWeights: readonly number[] | null,
): LossConfig {
  let ceTerms = 0;
  const visit = (c: LossConfig): LossConfig => {
    const e: Expanded = typeof c === "string" ? ((COMPOUND[c] as Expanded | undefined) ?? { loss: c }) : c;
    if ("sum" in e) return { sum: e.sum.map((item) => ({ ...item, loss: visit(item.loss) })) };
    const options: Record<string, unknown> = { ignoreIndex, ...e.options };
    if (e.loss === "ce" && classWeights) {
      if (options.classWeights != null) {
        throw new SegkitError("classWeights are set both in the config and in the ce loss's options; keep one");
      }
      options.classWeights = [...classWeights];
      ceTerms++;
    }
    return { loss: e.loss, options } as LossConfig;
  };
  const resolved = visit(config);
  if (classWeights && ceTerms === 0) {
    throw new SegkitError("classWeights weight the cross-entropy loss, and this loss has none", {
      hint: 'use loss "ce" or "ce+dice", or drop classWeights',
    });
  }
  return resolved;
}
