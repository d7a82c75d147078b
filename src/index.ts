// segkit public API: named exports only, grouped by area.

// backend: picks and prepares the tfjs backend (wasm by default in Node) and registers segkit's wasm kernels;
// training forward passes with conv + batch norm + ReLU blocks fused on onnxruntime
export {
  type ActiveBackend,
  BACKEND_NAMES,
  type BackendChoice,
  DEFAULT_INIT_BACKEND_OPTIONS,
  type InitBackendOptions,
  initBackend,
  registerWasmKernels,
  wasmThreads,
} from "./backend/init.js";
export { isWasmOutOfMemory, type MemoryContext, withWasmMemoryGuard } from "./backend/memory.js";
// core: pixel containers, palettes, errors, seeded randomness, the skipped-file report
export { errorMessage, SegkitError } from "./core/errors.js";
export {
  createImage,
  createMask,
  DEFAULT_IGNORE_INDEX,
  type Mask,
  maskHistogram,
  type RgbImage,
} from "./core/image.js";
export { type Palette, VOC_PALETTE, vocPalette } from "./core/palette.js";
export { createRng, deriveSeed, permutation, type Rng } from "./core/random.js";
export type { SkippedSample } from "./core/skipped.js";
// data: the Dataset contract, loaders, splits, augmentation, batching, inspection
export { COCO_ANNOTATIONS_FILE, MAX_COCO_JSON_BYTES, openCoco } from "./data/coco.js";
export {
  type CocoPanopticDataset,
  type CocoPanopticFile,
  openCocoPanoptic,
  type PanopticAnnotation,
  type PanopticCategory,
  type PanopticSegment,
  type PanopticSegmentation,
  panopticPngDir,
  readCocoPanopticJson,
  readPanopticPng,
} from "./data/coco-panoptic.js";
export { cached, type Dataset, type Sample, subset } from "./data/dataset.js";
export { FileDataset, IMAGE_EXTENSIONS, pairFiles, type SampleFiles } from "./data/files.js";
export {
  CAMVID_CLASSES,
  DATASET_FORMAT_NAMES,
  DATASET_FORMATS,
  defaultEvalSplit,
  detectFormat,
  type OpenDatasetOptions,
  openDataset,
} from "./data/formats.js";
export { type DatasetReport, inspectDataset } from "./data/inspect.js";
export { instanceTargetDataset } from "./data/instance-targets.js";
export {
  type Batch,
  type BatchOptions,
  batches,
  DEFAULT_BATCH_OPTIONS,
  splitDataset,
  splitIndices,
} from "./data/loader.js";
export { cropPatch, type PatchOptions, patchDataset, scoredPixels } from "./data/patches.js";
export { DEFAULT_PREVIEW, type PreviewOptions, previewGrid } from "./data/preview.js";
export { regionInstanceDataset, regionInstances } from "./data/region-instances.js";
export { createSyntheticDataset, DEFAULT_SYNTHETIC_OPTIONS, syntheticSample } from "./data/synthetic.js";
export {
  createSyntheticInstances,
  SYNTHETIC_INSTANCE_CLASSES,
  syntheticInstanceSample,
} from "./data/synthetic-instances.js";
export {
  type AugmentOptions,
  adjustColor,
  DEFAULT_AUGMENT,
  flipImage,
  flipMask,
  flipVertical,
  randomCropRect,
  rotate90,
  rotateSample,
  type TransformOptions,
  transformSample,
} from "./data/transforms.js";
// COCOeval (pycocotools' instance and box scoring) of a COCO results file against a COCO instances file
export {
  COCO_PARAMS,
  COCO_STAT_NAMES,
  type CocoEvalResult,
  type CocoEvalSet,
  type CocoIouType,
  type CocoStatName,
  cocoEvalDetections,
  cocoEvalGroundTruth,
  cocoEvalReport,
  cocoEvaluate,
  evaluateCocoFiles,
  formatCocoSummary,
} from "./eval/coco-eval.js";
// eval: predictions on disk against a dataset; a model scored on a dataset (as fit validates)
export {
  type ClassReport,
  type EvaluateOptions,
  type EvaluationReport,
  evaluatePredictions,
  type PredictionProblem,
} from "./eval/evaluate.js";
export { type EvaluateModelOptions, evaluateModel, type ModelScores } from "./eval/model.js";
export {
  type PanopticQuality,
  type PanopticSources,
  type PqComputeOptions,
  type PqScores,
  PqStat,
  pqCompute,
} from "./eval/panoptic.js";
// export: COCO instances JSON (class -> category ids 1.., background not exported), YOLO labels, PNG folders; the
// dataset exporter behind `segkit export`
export {
  type CocoAnnotation,
  CocoAnnotationSchema,
  type CocoCategory,
  type CocoInstances,
  CocoInstancesSchema,
  CocoRleSchema,
  cocoCategories,
  type MaskAnnotation,
  type MaskAnnotationOptions,
  maskToAnnotations,
} from "./export/coco.js";
export {
  EXPORT_TARGETS,
  type ExportOptions,
  type ExportSummary,
  type ExportTarget,
  exportDataset,
} from "./export/dataset.js";
export { yoloClassOf, yoloDataYaml, yoloLines } from "./export/yolo.js";
// infer: prediction with a checkpoint (resize or tiled), engines onnx | tfjs, and files written from it; the driver of
// batch jobs over a folder of images (predictFiles, generateMaskFiles)
export {
  type ImageFilesOptions,
  type ImageFilesSummary,
  type ImageJob,
  listImageFiles,
  runImageFiles,
} from "./infer/batch.js";
export {
  type PredictFilesOptions,
  type PredictFilesSummary,
  predictFiles,
  probabilityNames,
  writePrediction,
} from "./infer/files.js";
export { logitsToMask, logitsToProbabilities } from "./infer/logits.js";
export {
  createOnnxPredictor,
  DEFAULT_PREDICTOR_OPTIONS,
  loadPredictor,
  PREDICT_ENGINES,
  type PredictEngine,
  type Prediction,
  type PredictOptions,
  type Predictor,
  type PredictorOptions,
  resolveTiling,
} from "./infer/predict.js";
export {
  blendWeights,
  DEFAULT_TILE_OPTIONS,
  type TileBlend,
  type TileOptions,
  windowGrid,
  windowStarts,
} from "./infer/tiling.js";
// instances: instance segmentation models (YOLO-seg as Ultralytics exports it, post-processed as its predictor) behind
// one interface, loaded from a directory; overlays of instances
export { type InstanceModel, loadInstanceModel } from "./instances/model.js";
export { instancesOverlayPng } from "./instances/overlay.js";
// panoptic results: the categories of an instance + semantic model pair, the overlay of a fused map
export {
  type PanopticCategories,
  type PanopticCategoryEntry,
  panopticCategories,
  panopticOverlayPng,
  segmentCategory,
} from "./instances/panoptic.js";
export {
  createYoloSegModel,
  isYoloSegGraph,
  letterbox as yoloLetterbox,
  onnxMetadata,
  parseYoloNames,
  YOLO_DEFAULTS,
} from "./instances/yolo-seg.js";
// io: images and masks on disk
export { writeFileAtomic } from "./io/fs.js";
export { type HeatmapOptions, renderConfusionHeatmap } from "./io/heatmap.js";
export { type ImageSource, MAX_INPUT_PIXELS, readImage, readImageSize } from "./io/image.js";
// masks: masks as data, pure TypeScript: COCO RLE (column-major runs, pycocotools' counts string, size [h, w]),
// polygons (pixel corners on the integers, rasterised as pycocotools' frPyObjects), connected components, and the one
// bilinear resize of float planes (HWC; torch's float32 arithmetic, as SAM's reference needs, as an option)
export {
  encodeIdMap,
  encodeInstanceMap,
  type InstanceMap,
  type InstanceMapEncoding,
  instanceMap,
  instanceMapMasks,
  readInstanceMap,
  writeInstanceMap,
} from "./io/instance-map.js";
export { applyEncoding, type MaskEncoding, type RawMask, readMask, readRawMask } from "./io/mask.js";
export { cropImage, type ImageResample, type Rect, resizeImage, resizeMask } from "./io/resize.js";
export {
  CLASS_NAMES_KEY,
  colorizeMask,
  DEFAULT_OVERLAY_ALPHA,
  encodeBinaryMaskPng,
  encodeMaskPng,
  encodePng,
  type GridOptions,
  type MaskPngOptions,
  makeGrid,
  type OverlayOptions,
  overlayMask,
  readMaskClassNames,
  writeImagePng,
  writeMaskPng,
} from "./io/write.js";
// losses: pure functions (yTrue int32 [B,H,W], logits [B,H,W,C]) -> scalar, and one registry; semantics in losses.ts
export { binaryCrossEntropy, crossEntropy, diceLoss, focalLoss, type LossFn } from "./losses/losses.js";
export {
  type BinaryCrossEntropyOptions,
  type CrossEntropyOptions,
  DEFAULT_BINARY_CROSS_ENTROPY_OPTIONS,
  DEFAULT_CROSS_ENTROPY_OPTIONS,
  DEFAULT_DICE_OPTIONS,
  DEFAULT_FOCAL_OPTIONS,
  type DiceOptions,
  type FocalOptions,
  validateBinaryCrossEntropyOptions,
  validateCrossEntropyOptions,
  validateDiceOptions,
  validateFocalOptions,
} from "./losses/options.js";
export { createLoss, LOSS_NAMES, type LossConfig, type LossName } from "./losses/registry.js";
export { type Components, type ComponentsOptions, connectedComponents } from "./masks/components.js";
export {
  BOUNDARY_CLASS,
  instancesToTargets,
  instanceTargetClasses,
  type TargetsToInstancesOptions,
  targetsToInstances,
} from "./masks/instance-targets.js";
export {
  type Box,
  type CocoAnnotationIn,
  countInstances,
  filterInstances,
  type InstanceAnnotation,
  type Instances,
  instancesFromCoco,
  instancesFromMasks,
  instancesToCoco,
  maskBox,
} from "./masks/instances.js";
export { type PanopticSegmentInfo, panopticSegmentsInfo } from "./masks/panoptic-coco.js";
export { type FusedSegment, fusePanoptic, type PanopticFusionOptions } from "./masks/panoptic-fusion.js";
export {
  type Contour,
  contoursToRle,
  DEFAULT_POLYGON_OPTIONS,
  maskToPolygons,
  type Polygon,
  type PolygonOptions,
  polygonsToMask,
  polygonsToRle,
  polygonToRle,
  segmentationToRle,
  simplifyPolygon,
} from "./masks/polygon.js";
export {
  type BilinearPrecision,
  type BilinearTaps,
  bilinearTaps,
  type ResizeBilinearOptions,
  resizeBilinear,
} from "./masks/resize.js";
export {
  bboxIou,
  type CompressedRle,
  checkRle,
  MAX_RLE_PIXELS,
  type Rle,
  rleArea,
  rleDecode,
  rleEncode,
  rleFromString,
  rleInvert,
  rleIou,
  rleMerge,
  rlePaint,
  rleToBbox,
  rleToString,
} from "./masks/rle.js";
export {
  type BinaryScores,
  binaryScores,
  DEFAULT_BINARY_THRESHOLD,
  labelsToBinary,
  probabilitiesToBinary,
} from "./metrics/binary.js";
export {
  BoundaryMetrics,
  type BoundaryOptions,
  type BoundaryScores,
  boundaryDistances,
  DEFAULT_BOUNDARY_OPTIONS,
} from "./metrics/boundary.js";
// metrics: statistics (confusion matrix) first, reductions second; boundary metrics; binary mode
export { type ClassStats, ConfusionMatrix, classStats } from "./metrics/confusion.js";
export {
  type ClassScores,
  classScores,
  type DatasetScores,
  DEFAULT_ZERO_DIVISION,
  datasetScores,
  nanMean,
  type PerImageScores,
  perImageScores,
  type ReduceOptions,
  SegmentationMetrics,
  type ZeroDivision,
} from "./metrics/reduce.js";
export { CHECKPOINT_FILES, checkpointDir, MODEL_CARD_FILE } from "./models/checkpoint.js";
// models: createModel({ encoder, decoder, ...options }) over an encoder and a decoder registry, or a preset
// createModel(arch, options); input [B,H,W,3] float32 0..255, output logits [B,H,W,C]
export { type DecoderDefinition, defineDecoder } from "./models/decoders/decoder.js";
export { DECODERS } from "./models/decoders/registry.js";
export { DEFAULT_UNET_DECODER_OPTIONS } from "./models/decoders/unet.js";
export { DEFAULT_CONV_STACK_ENCODER_OPTIONS } from "./models/encoders/conv-stack.js";
export {
  declareEncoder,
  defineEncoder,
  type Encoder,
  type EncoderDefinition,
  type EncoderStage,
} from "./models/encoders/encoder.js";
export { DEFAULT_MOBILENETV2_ENCODER_OPTIONS } from "./models/encoders/mobilenet-v2.js";
export { ENCODERS } from "./models/encoders/registry.js";
export { DEFAULT_UNET_ENCODER_OPTIONS } from "./models/encoders/unet.js";
export { type HeadMode, headMode, probabilities } from "./models/head.js";
export { type ModelInfo, modelInfo } from "./models/info.js";
export { fileHandler, loadModel, readWeights, saveModel } from "./models/io.js";
export { tensorToLabels } from "./models/labels.js";
export { DEFAULT_EXPORT_ONNX_OPTIONS, type ExportOnnxOptions, exportOnnx } from "./models/onnx.js";
export { DEFAULT_COMMON_OPTIONS as DEFAULT_MODEL_OPTIONS } from "./models/options.js";
export {
  type ComposedName,
  createModel,
  DECODER_NAMES,
  DEFAULT_COMPOSED_OPTIONS,
  DEFAULT_ENCODER_DECODER_OPTIONS,
  DEFAULT_MOBILENETV2_UNET_OPTIONS,
  DEFAULT_UNET_OPTIONS,
  type DecoderChoice,
  type DecoderName,
  ENCODER_NAMES,
  type EncoderChoice,
  type EncoderDecoderOptions,
  type EncoderName,
  MODEL_ARCHS,
  MODEL_PRESETS,
  type MobileNetV2UnetOptions,
  type ModelArch,
  type ModelName,
  type ModelOptions,
  type ModelSpec,
  type ResolvedModelSpec,
  type SegkitModelMetadata,
  type UnetOptions,
  validateModelSpec,
} from "./models/registry.js";
export {
  type EncoderWeightsInfo,
  encoderLayers,
  freezeEncoder,
  loadEncoderWeightFile,
  loadEncoderWeights,
} from "./models/weights.js";
// onnx: the one place onnxruntime is imported; the predictor of a model exported to ONNX
export { DEFAULT_ONNX_PREDICTOR_OPTIONS, type OnnxPredictor, type OnnxPredictorOptions } from "./onnx/predictor.js";
// sam: automatic mask generation (segment-anything's SamAutomaticMaskGenerator): amg.py's helpers as pure functions
// (boxes x1,y1,x2,y2 with inclusive maxima from masks, RLEs column-major) and one pipeline writing its records
export {
  type AmgBox,
  batchedMaskToBox,
  batchedNms,
  batchIterator,
  boxXYXYToXYWH,
  buildAllLayerPointGrids,
  buildPointGrid,
  calculateStabilityScore,
  generateCropBoxes,
  isBoxNearCropEdge,
  maskToBox,
  removeSmallRegions,
  uncropBox,
  uncropMask,
  uncropPoints,
  uncroppedMaskToRle,
} from "./sam/amg/amg.js";
// sam: automatic masks on disk (`segkit sam auto`): amg.py's per-image JSON, one COCO file for a directory, overlays
export {
  AMG_COCO_FILE,
  type AmgCocoInstances,
  AmgCocoInstancesSchema,
  type AmgFilesOptions,
  type AmgFilesProgress,
  type AmgFilesSummary,
  amgCoco,
  amgOverlay,
  amgRecordsJson,
  generateMaskFiles,
} from "./sam/amg/files.js";
export {
  AMG_OUTPUT_MODES,
  type AmgOptions,
  type AmgOutputMode,
  type AmgProgress,
  type AmgRecord,
  DEFAULT_AMG_OPTIONS,
  generateMasks,
  validateAmgOptions,
} from "./sam/amg/generator.js";
// sam: a prediction on disk (mask PNGs, overlay, low-res logits as .npy) and a previous mask read back as mask input
export {
  MASK_INPUT_LOGIT,
  promptOverlay,
  readMaskInput,
  type SamMaskFile,
  type SamOutputFiles,
  writeSamOutputs,
} from "./sam/files.js";
// sam: model download from a Hugging Face-style hub into a local cache (layout and checksums in sam/hub.ts)
export {
  type ChecksumKind,
  DEFAULT_PULL_OPTIONS,
  defaultCacheDir,
  matchesGlob,
  type PulledFile,
  type PullOptions,
  type PullProgress,
  type PullResult,
  type PullStatus,
  pullModel,
  repoCacheDir,
  SAM_FILE_PATTERNS,
  validateRepoId,
  validateRepoPath,
} from "./sam/hub.js";
// sam: loading a SAM-family ONNX model (split export or transformers.js layout, detected from the graphs) with typed
// encode/decode calls
export {
  DEFAULT_LOAD_SAM_MODEL_OPTIONS,
  type ExecutionProvider,
  type LoadSamModelOptions,
  loadSamModel,
  SAM_LAYOUTS,
  SAM_PREPROCESS,
  type SamDecoded,
  type SamDecodeOptions,
  type SamDecodePrompt,
  type SamEmbeddings,
  type SamEncoderInput,
  type SamLayout,
  type SamModel,
  type SamPreprocess,
  type SamTensor,
} from "./sam/model.js";
export { decodeNpy, encodeNpy } from "./sam/npy.js";
// sam: geometry and pre/postprocessing exact to segment-anything (Pillow's resize, prompt packing, mask upscaling)
export { type PillowFilter, pillowResize, pillowResizeBilinear } from "./sam/pillow-resize.js";
export {
  postprocessMasks,
  type SamMaskFrame,
  type ThresholdedMasks,
  type UpscaleAndThresholdOptions,
  type UpscaledMasks,
  type UpscaledRle,
  type UpscaleMasksOptions,
  type UpscaleToRleOptions,
  upscaleAndThreshold,
  upscaleMasks,
  upscaleToRle,
} from "./sam/postprocess.js";
// sam: SamPredictor, setImage() once per image (embeddings cached in memory and optionally on disk), predict() per click
export {
  createSamPredictor,
  DEFAULT_SAM_PREDICTOR_OPTIONS,
  type SamImageInfo,
  type SamLowResPrediction,
  type SamPrediction,
  type SamPredictor,
  type SamPredictorOptions,
  type SamPredictRequest,
} from "./sam/predictor.js";
// sam: SAM 2 as the 7-graph split (scripts/export_sam2_onnx.py): its files and constants, and video tracking
export {
  findSam2Files,
  openSam2,
  readSam2Constants,
  SAM2_GRAPHS,
  type Sam2Constants,
  type Sam2Files,
  type Sam2Graph,
  type Sam2Parts,
} from "./sam/sam2.js";
export {
  applyBoxes,
  applyCoords,
  decoderInputs,
  normalizeAndPad,
  preprocessImage,
  preprocessShape,
  preprocessStretched,
  resizeLongestSide,
  SAM_IMAGE_SIZE,
  SAM_LOW_RES_SIZE,
  SAM2_PIXEL_MEAN,
  SAM2_PIXEL_STD,
  type SamBox,
  type SamPoint,
  type SamPreprocessedImage,
  type SamPrompt,
  type SamSize,
  samInputShape,
  selectMaskChannels,
  selectSingleMask,
  stabilityScore,
  thresholdMasks,
} from "./sam/transforms.js";
export {
  createVideoPredictor,
  NO_OBJ_SCORE,
  type SamVideoPredictor,
  trackVideo,
  type VideoFrameResult,
  type VideoObjectResult,
  type VideoPrompt,
  type VideoTracker,
} from "./sam/video.js";
export { openVideoFrames, type VideoFrames } from "./sam/video-frames.js";
// sam: one image's embeddings as bytes (application/x-segkit-embedding), what segkit/web decodes in the browser
export {
  decodeEmbeddingWire,
  decodeLowResWire,
  EMBEDDING_WIRE_TYPE,
  type EmbeddingWire,
  encodeEmbeddingWire,
  encodeLowResWire,
  LOW_RES_WIRE_TYPE,
  type LowResAnswer,
} from "./sam/wire.js";

// studio: the labelling server (`segkit studio`): project store (annotations.json), background encoder, HTTP API
export {
  createEncoderQueue,
  type EmbeddingStatus,
  type EncoderProgress,
  type EncoderQueue,
  type EncoderQueueOptions,
} from "./studio/encoder-queue.js";
export { exportProject } from "./studio/export.js";
export {
  accessToken,
  DEFAULT_MAX_BODY_BYTES,
  isLoopback,
  STUDIO_APP_FILES,
  type StudioAppFile,
  type StudioServer,
  type StudioServerOptions,
  startStudioServer,
} from "./studio/server.js";
export {
  type AnnotationsChange,
  AnnotationsChangeSchema,
  IMAGE_STATES,
  type ImageAnnotations,
  type ImageState,
  INSTANCE_SOURCES,
  type InstanceSource,
  listImages,
  MAX_INSTANCES,
  openProjectStore,
  type ProjectStore,
  type ProjectStoreOptions,
  readClassesFile,
  type StudioClass,
  StudioConflict,
  type StudioImage,
  type StudioInstance,
} from "./studio/store.js";

// train: the fit loop (Keras-style fit with checkpoints, resume, early stopping), its config, schedules, model card
// and run reports (curves.png, samples.png, report.html)
export { type ModelCard, modelCard } from "./train/card.js";
export { autoClassWeights, medianFrequencyWeights } from "./train/class-weights.js";
export {
  DEFAULT_TRAIN_CONFIG,
  MONITORS,
  type Monitor,
  monitorMode,
  type OptimizerConfig,
  type PredictSettings,
  predictSettings,
  type ResolvedTrainConfig,
  type ScheduleConfig,
  type TrainConfig,
  type TrainModelConfig,
  trainModelName,
  validateTrainConfig,
} from "./train/config.js";
export { type FitOptions, type FitProgress, type FitSummary, fit, type TrainState } from "./train/fit.js";
export { type EpochMetrics, formatEpochLine } from "./train/metrics.js";
export { type FitReporterOptions, fitReporter, type ProgressBar } from "./train/progress.js";
export {
  CURVES_SIZE,
  type CurvesOptions,
  curvesSvg,
  DEFAULT_REPORT_OPTIONS,
  REPORT_FILES,
  type ReportInput,
  type ReportOptions,
  renderCurves,
  renderSamples,
  reportHtml,
  type SampleRow,
  type SamplesOptions,
  writeReport,
} from "./train/report.js";
export {
  initialScheduleState,
  learningRate,
  type MonitorState,
  type ScheduleState,
  type StopReason,
  stepSchedule,
} from "./train/schedule.js";
export { seedWeights } from "./train/seed.js";

export { VERSION } from "./version.js";
