/**
 * The name table from PyTorch MobileNetV2 state dicts to segkit's MobileNetV2 encoder, whose layers carry Keras'
 * names (`keras.applications.MobileNetV2`, so Keras `.h5` files need no table: their weight names are segkit's).
 *
 * | Keras / segkit layer          | torchvision `mobilenet_v2`        | timm `mobilenetv2_*`          |
 * |-------------------------------|-----------------------------------|-------------------------------|
 * | Conv1, bn_Conv1               | features.0.0, features.0.1        | conv_stem, bn1                |
 * | expanded_conv_depthwise(_BN)  | features.1.conv.0.0, .conv.0.1    | blocks.0.0.conv_dw, .bn1      |
 * | expanded_conv_project(_BN)    | features.1.conv.1, .conv.2        | blocks.0.0.conv_pw, .bn2      |
 * | block_i_expand(_BN), i=1..16  | features.{i+1}.conv.0.0, .conv.0.1 | blocks.S.B.conv_pw, .bn1      |
 * | block_i_depthwise(_BN)        | features.{i+1}.conv.1.0, .conv.1.1 | blocks.S.B.conv_dw, .bn2      |
 * | block_i_project(_BN)          | features.{i+1}.conv.2, .conv.3    | blocks.S.B.conv_pwl, .bn3     |
 * | Conv_1, Conv_1_bn             | features.18.0, features.18.1      | conv_head, bn2                |
 *
 * timm's stage S and index B of Keras block i: stages of 1, 2, 3, 4, 3, 3, 1 blocks (block 0 is S 0, B 0; blocks
 * 1-2 are S 1; 3-5 S 2; 6-9 S 3; 10-12 S 4; 13-15 S 5; 16 S 6).
 * Weights: conv `weight` [O, I, kh, kw] -> `kernel` [kh, kw, I, O]; depthwise conv `weight` [C, 1, kh, kw] ->
 * `depthwise_kernel` [kh, kw, C, 1]; batch norm `weight`, `bias`, `running_mean`, `running_var` -> `gamma`, `beta`,
 * `moving_mean`, `moving_variance` (`num_batches_tracked` is dropped).
 */

export type TorchNaming = "torchvision" | "timm";

/** How a torch tensor becomes the tfjs weight. */
export type TorchLayout = "conv" | "depthwise" | "bn";

export interface TorchWeightTarget {
  /** segkit's `layer/weight`. */
  key: string;
  layout: TorchLayout;
}

/** Blocks per timm stage. */
const TIMM_STAGES = [1, 2, 3, 4, 3, 3, 1];
const BLOCK_COUNT = 17;

const BN_WEIGHTS: ReadonlyArray<readonly [string, string]> = [
  ["weight", "gamma"],
  ["bias", "beta"],
  ["running_mean", "moving_mean"],
  ["running_var", "moving_variance"],
];

/** [Keras layer, torch module, kind] of every conv and batch norm of MobileNetV2 (the head's Conv_1 included). */
function modules(naming: TorchNaming): [string, string, "conv" | "depthwise" | "bn"][] {
  const tv = naming === "torchvision";
  const timmBlock = TIMM_STAGES.flatMap((n, s) => Array.from({ length: n }, (_, b) => `blocks.${s}.${b}`));
  const out: [string, string, "conv" | "depthwise" | "bn"][] = [
    ["Conv1", tv ? "features.0.0" : "conv_stem", "conv"],
    ["bn_Conv1", tv ? "features.0.1" : "bn1", "bn"],
  ];
  for (let i = 0; i < BLOCK_COUNT; i++) {
    const k = i ? `block_${i}_` : "expanded_conv_";
    const t = tv ? `features.${i + 1}.conv.` : `${timmBlock[i]}.`;
    const names = tv
      ? i === 0
        ? ["", "", "0.0", "0.1", "1", "2"]
        : ["0.0", "0.1", "1.0", "1.1", "2", "3"]
      : i === 0
        ? ["", "", "conv_dw", "bn1", "conv_pw", "bn2"]
        : ["conv_pw", "bn1", "conv_dw", "bn2", "conv_pwl", "bn3"];
    const [expand, expandBn, dw, dwBn, project, projectBn] = names.map((n) => t + n);
    if (i) out.push([`${k}expand`, expand as string, "conv"], [`${k}expand_BN`, expandBn as string, "bn"]);
    out.push(
      [`${k}depthwise`, dw as string, "depthwise"],
      [`${k}depthwise_BN`, dwBn as string, "bn"],
      [`${k}project`, project as string, "conv"],
      [`${k}project_BN`, projectBn as string, "bn"],
    );
  }
  out.push(["Conv_1", tv ? "features.18.0" : "conv_head", "conv"], ["Conv_1_bn", tv ? "features.18.1" : "bn2", "bn"]);
  return out;
}

/** torch tensor name (without prefix) -> segkit's weight, for a naming (see the module comment). */
export function mobileNetV2TorchNames(naming: TorchNaming): Map<string, TorchWeightTarget> {
  const table = new Map<string, TorchWeightTarget>();
  for (const [layer, module, kind] of modules(naming)) {
    if (kind === "bn") {
      for (const [from, to] of BN_WEIGHTS) table.set(`${module}.${from}`, { key: `${layer}/${to}`, layout: "bn" });
    } else {
      const weight = kind === "depthwise" ? "depthwise_kernel" : "kernel";
      table.set(`${module}.weight`, { key: `${layer}/${weight}`, layout: kind });
    }
  }
  return table;
}

/** The first conv's name in each naming: finds the naming of a state dict, and its prefix (`encoder.`, `model.`). */
const STEMS: ReadonlyArray<readonly [TorchNaming, string]> = [
  ["torchvision", "features.0.0.weight"],
  ["timm", "conv_stem.weight"],
];

/** The MobileNetV2 naming of a state dict's tensor names, and the prefix before them; null if neither. */
export function detectTorchNaming(names: Iterable<string>): { naming: TorchNaming; prefix: string } | null {
  for (const name of names) {
    for (const [naming, stem] of STEMS) {
      if (name === stem || name.endsWith(`.${stem}`)) return { naming, prefix: name.slice(0, -stem.length) };
    }
  }
  return null;
}
