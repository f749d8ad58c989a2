import { describe, expect, it } from "vitest";
import { decodeMaps } from "./codecs";

describe("decodeMaps", () => {
  it("splits the buffer into one (h, w) view per word without copying", () => {
    const bytes = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    const maps = decodeMaps(new DataView(bytes.buffer), 2, 3);
    expect(maps.map((m) => Array.from(m))).toEqual([
      [1, 2, 3, 4, 5, 6],
      [7, 8, 9, 10, 11, 12],
    ]);
    expect(maps[1].buffer).toBe(bytes.buffer);
  });
  it("refuses a buffer that is not a whole number of maps", () => {
    expect(() => decodeMaps(new Uint8Array(7), 2, 3)).toThrow(/not a whole number of 2x3 maps/);
  });
});
