import { describe, expect, it } from "vitest";
import { colormap } from "./colormaps";
import { DIM_ALPHA, OUTLINE_RGB, overlay } from "./overlays";

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
