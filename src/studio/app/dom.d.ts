// The app runs in the browser: DOM types for src/studio/app (tsc checks it with the rest of src/).
/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/// <reference lib="dom.asynciterable" />
