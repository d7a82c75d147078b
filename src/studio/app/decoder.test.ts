import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeWhere } from "./decoder.js";

describe("decodeWhere", () => {
  it("auto: on the server for a page from this machine, in the browser for a page from elsewhere; ?decode= wins", () => {
    const cases: [string | null, string, "browser" | "server"][] = [
      [null, "127.0.0.1", "server"],
      [null, "localhost", "server"],
      [null, "[::1]", "server"],
      ["auto", "127.0.0.1", "server"],
      [null, "192.168.1.20", "browser"],
      [null, "studio.lab.example", "browser"],
      ["nonsense", "10.0.0.5", "browser"],
      ["browser", "127.0.0.1", "browser"],
      ["server", "192.168.1.20", "server"],
    ];
    for (const [asked, host, want] of cases) assert.equal(decodeWhere(asked, host), want, `${asked} ${host}`);
  });
});
