import { describe, expect, it } from "vitest";
import { shareScale, sumSteps } from "./step_sums";

describe("steps and scales", () => {
  it("sums steps weighted by their raw maxima and rescales the sum to 255", () => {
    const stepMaps = new Uint8Array([255, 0, 0, 255]); // 2 steps, 1 word, 2 pixels
    const { maps, peaks } = sumSteps(stepMaps, new Float32Array([2, 6]), 1, 2, 0, 2);
    expect(Array.from(maps[0])).toEqual([85, 255]);
    expect(peaks[0]).toBeCloseTo(6);
  });
  it("shares one scale: a word with half the peak reaches half the colours", () => {
    const out = shareScale([new Uint8Array([255]), new Uint8Array([255])], [1, 2]);
    expect(out.map((m) => m[0])).toEqual([128, 255]);
  });
});
