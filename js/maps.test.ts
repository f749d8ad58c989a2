import { describe, expect, it } from "vitest";
import { localModel } from "./local_model";
import {
  DIM_ALPHA,
  OUTLINE_RGB,
  area,
  argmax,
  chips,
  colormap,
  decodeMaps,
  formatValue,
  maskIou,
  occurrences,
  outline,
  overlay,
  resample,
  shareScale,
  sumSteps,
  threshold,
} from "./maps";

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

describe("chips", () => {
  it("keeps the text between spans and marks punctuation as not a word", () => {
    const spans = [
      { text: "a", start: 0, end: 1, word: 0, available: true },
      { text: "dog", start: 2, end: 5, word: 1, available: true },
      { text: ",", start: 5, end: 6, word: null, available: true },
      { text: "hat", start: 7, end: 10, word: 2, available: false },
    ];
    const out = chips("a dog, hat!", spans);
    expect(out.map((c) => c.kind)).toEqual(["word", "space", "word", "punct", "space", "word", "space"]);
    expect(out.map((c) => c.text).join("")).toBe("a dog, hat!");
    expect(out[5]).toEqual({ kind: "word", text: "hat", word: 2, available: false });
  });

  it("reads offsets in UTF-16 units, so an emoji before a word does not shift it", () => {
    // spans_state sends UTF-16 offsets: "🔴" is two units
    const spans = [
      { text: "a", start: 0, end: 1, word: 0, available: true },
      { text: "🔴", start: 2, end: 4, word: null, available: true },
      { text: "dog", start: 5, end: 8, word: 1, available: true },
    ];
    const out = chips("a 🔴 dog", spans);
    expect(out.map((c) => c.text)).toEqual(["a", " ", "🔴", " ", "dog"]);
  });
});

describe("colormap", () => {
  // matplotlib's colours at 0, 64, 128, 191 and 255 of 255
  const MATPLOTLIB = {
    jet: [[0, 0, 128], [0, 128, 255], [125, 255, 122], [255, 152, 0], [128, 0, 0]],
    viridis: [[68, 1, 84], [59, 82, 139], [33, 145, 140], [92, 200, 99], [253, 231, 37]],
    inferno: [[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 140, 10], [252, 255, 164]],
  };
  for (const [name, colours] of Object.entries(MATPLOTLIB)) {
    it(`matches matplotlib's ${name} within 6 levels`, () => {
      const lut = colormap(name as "jet");
      [0, 64, 128, 191, 255].forEach((v, i) =>
        colours[i].forEach((c, k) => expect(Math.abs(lut[v * 3 + k] - c)).toBeLessThanOrEqual(6)),
      );
    });
  }
  it("says which colour maps exist", () => {
    expect(() => colormap("turbo" as never)).toThrow(/inferno, viridis or jet/);
  });
});

describe("Eq. 7 mask", () => {
  const map = new Uint8Array([0, 50, 101, 102, 200, 255]);
  it("keeps pixels at or above tau times the maximum", () => {
    expect(Array.from(threshold(map, 0.4))).toEqual([0, 0, 0, 1, 1, 1]);
    expect(Array.from(threshold(map, 0))).toEqual([1, 1, 1, 1, 1, 1]);
    expect(Array.from(threshold(map, 1))).toEqual([0, 0, 0, 0, 0, 1]);
  });
  it("has the area of its pixels", () => {
    expect(area(threshold(map, 0.4))).toBe(0.5);
  });
  it("outlines the inside pixels that touch the outside", () => {
    const square = new Uint8Array(25);
    for (let y = 1; y < 4; y++) for (let x = 1; x < 4; x++) square[y * 5 + x] = 1;
    const edge = outline(square, 5, 5);
    expect(area(edge) * 25).toBe(8);
    expect(edge[12]).toBe(0);
  });
});

describe("overlay", () => {
  const map = new Uint8Array([0, 255, 255, 255, 255, 255, 255, 255, 255]);
  const base = { tau: 0.4, opacity: 0.5, colormap: "inferno" as const };
  it("heat view colours pixels from the colour map at the opacity and draws the τ contour", () => {
    const rgba = overlay(map, 3, 3, { ...base, view: "heat" });
    const lut = colormap("inferno");
    expect(Array.from(rgba.slice(0, 4))).toEqual([lut[0], lut[1], lut[2], 128]);
    // pixel 1 is inside the mask at the image border: on the contour, white and opaque
    expect(Array.from(rgba.slice(4, 8))).toEqual([...OUTLINE_RGB, 255]);
    const inner = new Uint8Array(25).fill(255);
    const rgbaInner = overlay(inner, 5, 5, { ...base, view: "heat" });
    expect(Array.from(rgbaInner.slice(12 * 4, 13 * 4))).toEqual([lut[765], lut[766], lut[767], 128]);
  });
  it("heat view's contour follows τ: a higher τ draws a smaller outline", () => {
    const ramp = new Uint8Array(49).map((_, i) => Math.round(255 - 30 * Math.hypot((i % 7) - 3, Math.floor(i / 7) - 3)));
    const white = (tau: number) => {
      const rgba = overlay(ramp, 7, 7, { ...base, tau, view: "heat" });
      let n = 0;
      for (let i = 0; i < 49; i++) if (rgba[i * 4 + 3] === 255) n++;
      return n;
    };
    expect(white(0.9)).toBeGreaterThan(0);
    expect(white(0.9)).toBeLessThan(white(0.6));
  });
  it("mask view dims the outside, draws the outline and leaves the inside clear", () => {
    const rgba = overlay(map, 3, 3, { ...base, view: "mask" });
    expect(Array.from(rgba.slice(0, 4))).toEqual([0, 0, 0, DIM_ALPHA]);
    expect(Array.from(rgba.slice(4, 8))).toEqual([...OUTLINE_RGB, 255]);
    const inside = overlay(new Uint8Array(25).fill(255), 5, 5, { ...base, view: "mask" });
    expect(Array.from(inside.slice(12 * 4, 13 * 4))).toEqual([0, 0, 0, 0]);
  });
});

describe("argmax of pinned words", () => {
  it("labels each pixel with the strongest word above tau, -1 where none is", () => {
    const a = new Uint8Array([255, 10, 120, 0]);
    const b = new Uint8Array([100, 255, 130, 50]);
    expect(Array.from(argmax([a, b], 0.4))).toEqual([0, 1, 1, -1]);
  });
});

describe("local model", () => {
  it("fires change events on set, like anywidget's model", () => {
    const model = localModel({ tau: 0.4 });
    const seen: unknown[] = [];
    const handler = () => seen.push(model.get("tau"));
    model.on("change:tau", handler);
    model.set("tau", 0.7);
    model.off("change:tau", handler);
    model.set("tau", 0.9);
    expect(seen).toEqual([0.7]);
  });
});

it("formats legend values briefly", () => {
  expect(formatValue(0)).toBe("0");
  expect(formatValue(1.23456)).toBe("1.23");
  expect(formatValue(123456)).toBe("1.23e+5");
});

describe("steps, scales and comparisons", () => {
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
  it("numbers only repeated words, case-insensitively", () => {
    const spans = ["A", "dog", "a", "hat"].map((text, word) => ({ text, start: 0, end: 0, word, available: true }));
    expect([...occurrences(spans).entries()]).toEqual([[0, 1], [2, 2], [1, null], [3, null]]);
  });
  it("resamples by nearest neighbour and measures mask IoU", () => {
    expect(Array.from(resample(new Uint8Array([1, 2, 3, 4]), 2, 2, 4, 4))).toEqual([1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
    expect(maskIou(new Uint8Array([1, 1, 0]), new Uint8Array([0, 1, 1]))).toBeCloseTo(1 / 3);
    expect(maskIou(new Uint8Array([0]), new Uint8Array([0]))).toBe(0);
  });
});
