import { describe, expect, it } from "vitest";
import { area, argmax, maskIou, outline, resample, threshold } from "./masks";

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

describe("argmax of pinned words", () => {
  it("labels each pixel with the strongest word above tau, -1 where none is", () => {
    const a = new Uint8Array([255, 10, 120, 0]);
    const b = new Uint8Array([100, 255, 130, 50]);
    expect(Array.from(argmax([a, b], 0.4))).toEqual([0, 1, 1, -1]);
  });
});

describe("comparisons", () => {
  it("resamples by nearest neighbour and measures mask IoU", () => {
    expect(Array.from(resample(new Uint8Array([1, 2, 3, 4]), 2, 2, 4, 4))).toEqual([1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
    expect(maskIou(new Uint8Array([1, 1, 0]), new Uint8Array([0, 1, 1]))).toBeCloseTo(1 / 3);
    expect(maskIou(new Uint8Array([0]), new Uint8Array([0]))).toBe(0);
  });
});
