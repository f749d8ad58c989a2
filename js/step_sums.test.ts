import { describe, expect, it } from "vitest";
import { bicubic } from "./resize";
import { mapsOverSteps, quantize, shareScale, sumSteps } from "./step_sums";

describe("steps and scales", () => {
  it("sums steps weighted by their raw maxima and rescales the sum to 255", () => {
    const stepMaps = new Uint8Array([255, 0, 0, 255]); // 2 steps, 1 word, 2 pixels
    const sums = sumSteps(stepMaps, new Float32Array([2, 6]), 1, 2, 0, 2);
    expect(Array.from(sums[0])).toEqual([2, 6]);
    const { maps, peaks } = quantize(sums);
    expect(Array.from(maps[0])).toEqual([85, 255]);
    expect(peaks[0]).toBeCloseTo(6);
  });
  it("draws a range of steps at the maps' size: the grid's sum upsampled bicubically", () => {
    // 3 steps, 1 word, a 2x2 grid; steps 1 and 2 put 1 and 3 at pixels 1 and 3
    const maps = new Uint8Array([255, 0, 0, 0, 0, 255, 0, 0, 0, 0, 0, 255]);
    const record = { maps, scales: new Float32Array([5, 1, 3]), steps: 3, grid: [2, 2] as [number, number] };
    const drawn = mapsOverSteps(record, 1, 3, [8, 8]);
    const expected = quantize([bicubic(new Float32Array([0, 1, 0, 3]), 2, 2, 8, 8)]);
    expect(drawn).toEqual(expected);
    expect(drawn?.maps[0].length).toBe(64);
    expect(mapsOverSteps(record, 1, 4, [8, 8])).toBeNull();
  });
  it("shares one scale: a word with half the peak reaches half the colours", () => {
    const out = shareScale([new Uint8Array([255]), new Uint8Array([255])], [1, 2]);
    expect(out.map((m) => m[0])).toEqual([128, 255]);
  });
});
