import { describe, expect, it } from "vitest";
import { shownMaps, stepsLabel, wordName } from "./context";
import type { DaamState } from "./context";
import { SPANS, context, videoState } from "./fixtures";

describe("shownMaps", () => {
  it("shows the exact all-steps maps when no steps are chosen", () => {
    const shown = shownMaps(context().model);
    expect(shown.maps.map((m) => Array.from(m))).toEqual([[255, 0, 0, 0], [0, 255, 0, 0], [0, 0, 255, 0]]);
    expect(shown.peaks).toEqual([1, 2, 4]);
    expect(shown.steps).toBe("all 2 steps");
  });
  it("sums a range of steps from the step maps, each weighted by its raw maximum", () => {
    const one = shownMaps(context({ steps: [1, 2] }).model);
    expect(Array.from(one.maps[0])).toEqual([0, 255, 0, 0]);
    expect(one.peaks[0]).toBeCloseTo(3);
    const both = shownMaps(context({ steps: [0, 2] }).model);
    // step 0 puts 1 at pixel 0, step 1 puts 3 at pixel 1: max-scaled, 85 and 255
    expect(Array.from(both.maps[1])).toEqual([85, 255, 0, 0]);
    expect(both.steps).toBe("all 2 steps");
  });
  it("scales every word to the largest peak when the scale is shared", () => {
    const shown = shownMaps(context({ scale: "shared" }).model);
    expect(shown.maps.map((m) => Math.max(...m))).toEqual([64, 128, 255]);
  });
  it("says during a generation that the maps are the steps so far", () => {
    expect(shownMaps(context({ status: "generating", progress: [3, 10] }).model).steps).toBe("steps so far (3 of 10)");
  });
});

it("labels steps the way the scrubber counts them (from 1)", () => {
  expect(stepsLabel([0, 0], 30)).toBe("all 30 steps");
  expect(stepsLabel([3, 4], 30)).toBe("step 4 of 30");
  expect(stepsLabel([0, 10], 30)).toBe("steps 1–10 of 30");
});

it("numbers repeated words and leaves unique ones plain", () => {
  expect([0, 1, 2].map((k) => wordName(SPANS, k))).toEqual(["a #1", "dog", "a #2"]);
});

describe("shownMaps of a video", () => {
  const video = (overrides: Partial<DaamState> = {}) => shownMaps(context(videoState(overrides)).model);
  it("shows the latent frame the frame shown comes from, each word at its peak over the clip", () => {
    // word 0 peaks at 2 in latent frame 0 and 1 in latent frame 1: frame 1 and 2 show it at half (128)
    expect(video().maps.map((m) => Array.from(m))).toEqual([[255, 0, 0, 0], [0, 64, 0, 0], [0, 0, 32, 0]]);
    expect(video({ frame: 2 }).maps.map((m) => Array.from(m))).toEqual([[0, 0, 0, 128], [0, 255, 0, 0], [0, 0, 255, 0]]);
    expect(video({ frame: 1 }).peaks).toEqual([2, 4, 8]);
    expect(video({ frame: 1 }).steps).toBe("all 2 steps; frame 2 of 3");
    expect(video().peakOf).toBe("this word's peak over the clip");
  });
  it("scales each frame to its own peak on request", () => {
    const shown = video({ per_frame: true });
    expect(shown.maps.map((m) => Math.max(...m))).toEqual([255, 255, 255]);
    expect(shown.peaks).toEqual([2, 1, 1]);
    expect(shown.peakOf).toBe("this word's peak in this frame");
  });
  it("sums a range of steps in every latent frame for the clip's peaks", () => {
    // step 0: weight 1 at pixel 0 in latent frame 0, weight 2 at pixel 1 in latent frame 1
    const first = video({ steps: [0, 1] });
    expect(first.peaks).toEqual([2, 2, 2]);
    expect(first.maps.map((m) => Array.from(m))).toEqual([[128, 0, 0, 0], [128, 0, 0, 0], [128, 0, 0, 0]]);
    expect(Array.from(video({ steps: [0, 1], frame: 1 }).maps[0])).toEqual([0, 255, 0, 0]);
  });
});
