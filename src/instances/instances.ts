/** The instance type and its COCO conversions live in src/masks/instances.ts (datasets and scoring use them too). */
export * from "../masks/instances.js";
