import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { describe, it } from "node:test";
import { type Action, actionFor, keyName, SHORTCUTS } from "./keymap.js";

const ev = (key: string, mods: { ctrl?: boolean; shift?: boolean; alt?: boolean; meta?: boolean } = {}) => ({
  key,
  ctrlKey: mods.ctrl ?? false,
  shiftKey: mods.shift ?? false,
  altKey: mods.alt ?? false,
  metaKey: mods.meta ?? false,
});

describe("studio keymap", () => {
  it("names keys with their modifiers; shift only where the character does not already say it", () => {
    assert.equal(keyName(ev("z", { ctrl: true })), "ctrl+z");
    assert.equal(keyName(ev("Z", { ctrl: true, shift: true })), "ctrl+shift+z");
    assert.equal(keyName(ev("z", { meta: true })), "ctrl+z");
    assert.equal(keyName(ev("N", { shift: true })), "shift+n");
    assert.equal(keyName(ev("?", { shift: true })), "?");
    assert.equal(keyName(ev("+", { shift: true })), "+");
    assert.equal(keyName(ev("Tab", { shift: true })), "shift+tab");
    assert.equal(keyName(ev("ArrowRight")), "arrowright");
    assert.equal(keyName(ev(" ")), "space");
  });

  it("maps the documented keys to their actions, each key bound once", () => {
    const cases: [string, Action][] = [
      ["1", "class"],
      ["9", "class"],
      ["tab", "cycle"],
      ["enter", "accept"],
      ["escape", "drop"],
      ["b", "brush"],
      ["e", "eraser"],
      ["p", "polygon"],
      ["[", "smaller"],
      ["]", "larger"],
      ["delete", "delete"],
      ["ctrl+z", "undo"],
      ["ctrl+shift+z", "redo"],
      ["n", "next"],
      ["shift+n", "previous"],
      ["arrowleft", "previous"],
      ["d", "done"],
      ["l", "prelabel"],
      ["shift+l", "prelabelAll"],
      ["+", "zoomIn"],
      ["-", "zoomOut"],
      ["?", "help"],
    ];
    for (const [key, action] of cases) assert.equal(actionFor(key), action, key);
    assert.equal(actionFor("q"), undefined);
    assert.equal(actionFor("x"), "rejectSuggestion");
    const keys = SHORTCUTS.flatMap((s) => s.keys ?? []);
    assert.equal(new Set(keys).size, keys.length, "a key bound twice");
    for (const s of SHORTCUTS) assert.equal(s.keys === undefined, s.action === undefined, s.label);
  });
});

describe("studio keymap in the README", () => {
  it("README's keyboard table is the shortcut table", async () => {
    const readme = await readFile(new URL("../../../README.md", import.meta.url), "utf8");
    const rows = SHORTCUTS.map((s) => `| ${s.label.replaceAll("|", "\\|")} | ${s.help} |`);
    const at = readme.indexOf(rows[0] as string);
    assert.ok(at >= 0, "README lacks the studio keyboard table");
    assert.equal(readme.slice(at).split("\n").slice(0, rows.length).join("\n"), rows.join("\n"));
  });
});
