/** The RGBA overlays drawn over the image: one word's map in a view, or the argmax of pinned words. */
import { type ColormapName, colormap } from "./colormaps";
import { outline, threshold } from "./masks";
import { PALETTE } from "./palette";

export type View = "heat" | "mask" | "both";

export const DIM_ALPHA = 166;
export const OUTLINE_RGB = [255, 255, 255];

/**
 * The RGBA overlay (h*w*4) of one word's map, drawn over the image:
 * heat: the colour map at `opacity`, with the Eq. 7 mask's outline at tau (the τ contour);
 * mask: outside dimmed, the outline drawn, inside clear;
 * both: the colour map inside the mask, outside dimmed, the outline drawn.
 */
export function overlay(
  map: Uint8Array,
  h: number,
  w: number,
  options: { view: View; tau: number; opacity: number; colormap: ColormapName },
  out: Uint8ClampedArray = new Uint8ClampedArray(h * w * 4),
): Uint8ClampedArray {
  const lut = colormap(options.colormap);
  const alpha = Math.round(Math.max(0, Math.min(1, options.opacity)) * 255);
  const inside = threshold(map, options.tau);
  const mask = options.view === "heat" ? null : inside;
  const edge = outline(inside, h, w);
  for (let i = 0; i < map.length; i++) {
    const o = i * 4;
    if (edge[i]) {
      out[o] = OUTLINE_RGB[0];
      out[o + 1] = OUTLINE_RGB[1];
      out[o + 2] = OUTLINE_RGB[2];
      out[o + 3] = 255;
    } else if (mask && !mask[i]) {
      out[o] = out[o + 1] = out[o + 2] = 0;
      out[o + 3] = DIM_ALPHA;
    } else if (options.view === "mask") {
      out[o] = out[o + 1] = out[o + 2] = out[o + 3] = 0;
    } else {
      const v = map[i] * 3;
      out[o] = lut[v];
      out[o + 1] = lut[v + 1];
      out[o + 2] = lut[v + 2];
      out[o + 3] = alpha;
    }
  }
  return out;
}

/** The RGBA overlay of an argmax map: each word's palette colour at `opacity`, clear where -1. */
export function argmaxOverlay(labels: Int16Array, opacity: number): Uint8ClampedArray {
  const out = new Uint8ClampedArray(labels.length * 4);
  const alpha = Math.round(Math.max(0, Math.min(1, opacity)) * 255);
  for (let i = 0; i < labels.length; i++) {
    const k = labels[i];
    if (k < 0) continue;
    const [r, g, b] = PALETTE[k % PALETTE.length];
    out[i * 4] = r;
    out[i * 4 + 1] = g;
    out[i * 4 + 2] = b;
    out[i * 4 + 3] = alpha;
  }
  return out;
}
