/**
 * Every shortcut of the studio, in one table: the key handler looks actions up here and the help overlay (?)
 * lists this table, so the two cannot drift apart. Keys are written as `keyName` spells a KeyboardEvent.
 */
export type Action =
  | "class"
  | "cycle"
  | "cycleBack"
  | "accept"
  | "drop"
  | "samTool"
  | "brush"
  | "eraser"
  | "polygon"
  | "smaller"
  | "larger"
  | "delete"
  | "raise"
  | "lower"
  | "undo"
  | "redo"
  | "next"
  | "previous"
  | "done"
  | "zoomIn"
  | "zoomOut"
  | "fit"
  | "acceptSuggestion"
  | "acceptAllSuggestions"
  | "rejectSuggestion"
  | "rejectAllSuggestions"
  | "prelabel"
  | "prelabelAll"
  | "mode"
  | "help";

export interface Shortcut {
  /** How the help overlay shows the keys or the gesture. */
  readonly label: string;
  readonly help: string;
  /** Keys as `keyName` spells them; absent for pointer gestures, which the canvas handles. */
  readonly keys?: readonly string[];
  readonly action?: Action;
}

export const SHORTCUTS: readonly Shortcut[] = [
  {
    label: "1-9",
    keys: ["1", "2", "3", "4", "5", "6", "7", "8", "9"],
    action: "class",
    help: "Choose the class (relabels the selected instance)",
  },
  { label: "Click", help: "SAM: positive point" },
  { label: "Shift+click / right-click", help: "SAM: negative point" },
  { label: "Drag", help: "SAM: box prompt" },
  { label: "Alt+click", help: "Select the instance under the pointer" },
  { label: "Tab", keys: ["tab"], action: "cycle", help: "Next mask candidate (or select the next instance)" },
  { label: "Shift+Tab", keys: ["shift+tab"], action: "cycleBack", help: "Previous candidate (or instance)" },
  { label: "Enter", keys: ["enter"], action: "accept", help: "Accept the proposal as an instance / close the polygon" },
  {
    label: "Escape",
    keys: ["escape"],
    action: "drop",
    help: "Drop the proposal or polygon, else stop pre-labelling all images, else deselect",
  },
  { label: "S", keys: ["s"], action: "samTool", help: "SAM prompt tool" },
  { label: "B", keys: ["b"], action: "brush", help: "Brush: paint the selected instance (a new one if none)" },
  { label: "E", keys: ["e"], action: "eraser", help: "Eraser on the selected instance" },
  {
    label: "P",
    keys: ["p"],
    action: "polygon",
    help: "Polygon: click vertices, Enter closes (adds to the selected instance, else a new one)",
  },
  { label: "[", keys: ["["], action: "smaller", help: "Smaller brush" },
  { label: "]", keys: ["]"], action: "larger", help: "Larger brush" },
  { label: "Del", keys: ["delete", "backspace"], action: "delete", help: "Delete the selected instance" },
  { label: "PageUp", keys: ["pageup"], action: "raise", help: "Bring the selected instance forward" },
  { label: "PageDown", keys: ["pagedown"], action: "lower", help: "Send the selected instance back" },
  { label: "A", keys: ["a"], action: "acceptSuggestion", help: "Accept the selected pre-label suggestion" },
  { label: "Shift+A", keys: ["shift+a"], action: "acceptAllSuggestions", help: "Accept every suggestion on the image" },
  { label: "X", keys: ["x"], action: "rejectSuggestion", help: "Reject (delete) the selected suggestion" },
  { label: "Shift+X", keys: ["shift+x"], action: "rejectAllSuggestions", help: "Reject every suggestion on the image" },
  { label: "L", keys: ["l"], action: "prelabel", help: "Pre-label the image (suggestions from SAM or the model)" },
  {
    label: "Shift+L",
    keys: ["shift+l"],
    action: "prelabelAll",
    help: "Pre-label all images (skips done ones and ones with suggestions)",
  },
  { label: "M", keys: ["m"], action: "mode", help: "Instance / semantic mode" },
  { label: "Ctrl+Z", keys: ["ctrl+z"], action: "undo", help: "Undo" },
  { label: "Ctrl+Shift+Z", keys: ["ctrl+shift+z", "ctrl+y"], action: "redo", help: "Redo" },
  { label: "N / →", keys: ["n", "arrowright"], action: "next", help: "Next image" },
  { label: "Shift+N / ←", keys: ["shift+n", "arrowleft"], action: "previous", help: "Previous image" },
  { label: "D", keys: ["d"], action: "done", help: "Mark the image done (again: in progress)" },
  { label: "+ / wheel", keys: ["+", "="], action: "zoomIn", help: "Zoom in" },
  { label: "- / wheel", keys: ["-"], action: "zoomOut", help: "Zoom out" },
  { label: "0", keys: ["0"], action: "fit", help: "Fit the image" },
  { label: "Space+drag", help: "Pan" },
  { label: "?", keys: ["?"], action: "help", help: "This help" },
];

/**
 * `[ctrl+][alt+][shift+]key` with the key lowercased (`enter`, `arrowright`, `z`, `?`). Shift is left out for
 * printable non-letters, whose character already says it (`?`, `+`); Meta counts as Ctrl.
 */
export function keyName(e: {
  key: string;
  ctrlKey: boolean;
  metaKey: boolean;
  altKey: boolean;
  shiftKey: boolean;
}): string {
  const key = e.key === " " ? "space" : e.key.toLowerCase();
  const printable = e.key.length === 1 && e.key.toLowerCase() === e.key.toUpperCase();
  const mods = [e.ctrlKey || e.metaKey ? "ctrl" : "", e.altKey ? "alt" : "", e.shiftKey && !printable ? "shift" : ""];
  return [...mods.filter(Boolean), key].join("+");
}

const BY_KEY = new Map(SHORTCUTS.flatMap((s) => (s.action ? (s.keys ?? []).map((k) => [k, s.action] as const) : [])));

/** The action bound to a key name, if any. */
export function actionFor(name: string): Action | undefined {
  return BY_KEY.get(name);
}
