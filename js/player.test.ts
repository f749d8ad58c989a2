import { expect, it } from "vitest";
import { frameShares, nextFrame } from "./player";

it("reads a word's row of the (words, frames) shares", () => {
  const mass = new Float32Array([0.5, 0.25, 0.25, 0.2, 0.4, 0.4]);
  expect(frameShares(mass, 2, 3, 1)?.map((v) => Math.round(v * 10) / 10)).toEqual([0.2, 0.4, 0.4]);
  expect(frameShares(mass, 2, 3, 2)).toBeNull();
  expect(frameShares(mass, 3, 3, 0)).toBeNull();
});

it("plays to the last frame, then stops or starts again", () => {
  expect(nextFrame(0, 3, false)).toBe(1);
  expect(nextFrame(2, 3, false)).toBeNull();
  expect(nextFrame(2, 3, true)).toBe(0);
});
