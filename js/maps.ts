/**
 * The rendering logic of the widget as pure functions of plain arrays: no DOM here, so that every rule
 * (decoding the binary maps, colour maps, Eq. 7 masks, outlines, the argmax of pinned words, the chips of
 * the prompt) is unit-tested in node.
 *
 * Maps arrive as one uint8 buffer: word k's map is bytes [k*h*w, (k+1)*h*w), row-major (h, w), each
 * scaled so that its maximum is 255 (the raw maximum travels separately in `peaks`).
 */

export type ColormapName = "inferno" | "viridis" | "jet";
export type View = "heat" | "mask" | "both";

export type Span = {
  text: string;
  start: number;
  end: number;
  /** Index into the words (and into the maps), or null for punctuation. */
  word: number | null;
  /** False when the tokenizer's window cut the word off: it has no map. */
  available: boolean;
};

export type Chip =
  | { kind: "word"; text: string; word: number; available: boolean }
  | { kind: "punct"; text: string }
  | { kind: "space"; text: string };

/** Word k's map as a view into the shared buffer (no copy). */
export function decodeMaps(buffer: DataView | ArrayBuffer | Uint8Array, h: number, w: number): Uint8Array[] {
  const bytes =
    buffer instanceof Uint8Array
      ? buffer
      : buffer instanceof ArrayBuffer
        ? new Uint8Array(buffer)
        : new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  const size = h * w;
  if (size === 0) return [];
  if (bytes.length % size !== 0) {
    throw new Error(`maps buffer of ${bytes.length} bytes is not a whole number of ${h}x${w} maps`);
  }
  const out: Uint8Array[] = [];
  for (let k = 0; k < bytes.length / size; k++) out.push(bytes.subarray(k * size, (k + 1) * size));
  return out;
}

/** The prompt as chips in text order: words, punctuation, and the whitespace between them. */
export function chips(prompt: string, spans: Span[]): Chip[] {
  const out: Chip[] = [];
  let at = 0;
  for (const span of spans) {
    if (span.start > at) out.push({ kind: "space", text: prompt.slice(at, span.start) });
    if (span.word === null) out.push({ kind: "punct", text: span.text });
    else out.push({ kind: "word", text: span.text, word: span.word, available: span.available });
    at = Math.max(at, span.end);
  }
  if (at < prompt.length) out.push({ kind: "space", text: prompt.slice(at) });
  return out;
}

// Polynomial fits of matplotlib's viridis and inferno (Matt Zucker), and matplotlib's piecewise-linear jet.
const POLY: Record<Exclude<ColormapName, "jet">, number[][]> = {
  viridis: [
    [0.2777273272234177, 0.005407344544966578, 0.3340998053353061],
    [0.1050930431085774, 1.404613529898575, 1.384590162594685],
    [-0.3308618287255563, 0.214847559468213, 0.09509516302823659],
    [-4.634230498983486, -5.799100973351585, -19.33244095627987],
    [6.228269936347081, 14.17993336680509, 56.69055260068105],
    [4.776384997670288, -13.74514537774601, -65.35303263337234],
    [-5.435455855934631, 4.645852612178535, 26.3124352495832],
  ],
  inferno: [
    [0.0002189403691192265, 0.001651004631001012, -0.01948089843709184],
    [0.1065134194856116, 0.5639564367884091, 3.932712388889277],
    [11.60249308247187, -3.972853965665698, -15.9423941062914],
    [-41.70399613139459, 17.43639888205313, 44.35414519872813],
    [77.162935699427, -33.40235894210092, -81.80730925738993],
    [-71.31942824499214, 32.62606426397723, 73.20951985803202],
    [25.13112622477341, -12.24266895238567, -23.07032500287172],
  ],
};
const JET: [number, number][][] = [
  [[0, 0], [0.35, 0], [0.66, 1], [0.89, 1], [1, 0.5]],
  [[0, 0], [0.125, 0], [0.375, 1], [0.64, 1], [0.91, 0], [1, 0]],
  [[0, 0.5], [0.11, 1], [0.34, 1], [0.65, 0], [1, 0]],
];

function piecewise(points: [number, number][], x: number): number {
  for (let i = 1; i < points.length; i++) {
    const [x1, y1] = points[i];
    const [x0, y0] = points[i - 1];
    if (x <= x1) return y0 + ((y1 - y0) * (x - x0)) / (x1 - x0);
  }
  return points[points.length - 1][1];
}

function clamp255(x: number): number {
  return Math.max(0, Math.min(255, Math.round(x * 255)));
}

function polyval(coefficients: number[], x: number): number {
  let y = 0;
  for (let i = coefficients.length - 1; i >= 0; i--) y = y * x + coefficients[i];
  return y;
}

const lutCache = new Map<ColormapName, Uint8Array>();

/** A 256-entry RGB look-up table: entry v is the colour of the value v/255. */
export function colormap(name: ColormapName): Uint8Array {
  const cached = lutCache.get(name);
  if (cached) return cached;
  if (name !== "jet" && !(name in POLY)) {
    throw new Error(`unknown colour map ${JSON.stringify(name)}; choose inferno, viridis or jet`);
  }
  const lut = new Uint8Array(256 * 3);
  for (let v = 0; v < 256; v++) {
    const x = v / 255;
    for (let c = 0; c < 3; c++) {
      const y = name === "jet" ? piecewise(JET[c], x) : polyval(POLY[name].map((row) => row[c]), x);
      lut[v * 3 + c] = clamp255(y);
    }
  }
  lutCache.set(name, lut);
  return lut;
}

/** Eq. 7 on a max-normalised uint8 map: inside where value >= tau * max (max is 255). */
export function threshold(map: Uint8Array, tau: number): Uint8Array {
  const cut = tau * 255;
  const mask = new Uint8Array(map.length);
  for (let i = 0; i < map.length; i++) mask[i] = map[i] >= cut ? 1 : 0;
  return mask;
}

/** The fraction of pixels inside a mask, in [0, 1]. */
export function area(mask: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < mask.length; i++) n += mask[i];
  return mask.length ? n / mask.length : 0;
}

/** Pixels inside the mask with a 4-neighbour outside it (the image border counts as outside). */
export function outline(mask: Uint8Array, h: number, w: number): Uint8Array {
  const edge = new Uint8Array(mask.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      if (!mask[i]) continue;
      const out =
        x === 0 || y === 0 || x === w - 1 || y === h - 1 || !mask[i - 1] || !mask[i + 1] || !mask[i - w] || !mask[i + w];
      edge[i] = out ? 1 : 0;
    }
  }
  return edge;
}

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

/** Categorical colours for pinned words (matplotlib's tab10). */
export const PALETTE: [number, number, number][] = [
  [31, 119, 180],
  [255, 127, 14],
  [44, 160, 44],
  [214, 39, 40],
  [148, 103, 189],
  [140, 86, 75],
  [227, 119, 194],
  [127, 127, 127],
  [188, 189, 34],
  [23, 190, 207],
];

export function paletteColor(k: number): string {
  const [r, g, b] = PALETTE[k % PALETTE.length];
  return `rgb(${r}, ${g}, ${b})`;
}

/**
 * Per pixel, the index (into `maps`) of the word with the largest max-normalised value among the words
 * whose Eq. 7 mask holds the pixel; -1 where no word's mask does.
 */
export function argmax(maps: Uint8Array[], tau: number): Int16Array {
  const n = maps.length ? maps[0].length : 0;
  const out = new Int16Array(n).fill(-1);
  const cut = tau * 255;
  for (let i = 0; i < n; i++) {
    let best = -1;
    for (let k = 0; k < maps.length; k++) {
      const v = maps[k][i];
      if (v >= cut && (best < 0 || v > maps[best][i])) best = k;
    }
    out[i] = best;
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

/** A raw map value for the legend: short, and exact enough to compare words. */
export function formatValue(x: number): string {
  if (x === 0) return "0";
  const a = Math.abs(x);
  return a >= 1e4 || a < 1e-2 ? x.toExponential(2) : x.toPrecision(3);
}

/** Float32 values from a little-endian binary trait. */
export function decodeFloats(buffer: DataView | null | undefined): Float32Array {
  if (!buffer || buffer.byteLength === 0) return new Float32Array(0);
  const out = new Float32Array(buffer.byteLength / 4);
  for (let i = 0; i < out.length; i++) out[i] = buffer.getFloat32(i * 4, true);
  return out;
}

/**
 * Eq. 6 over the steps [from, to): step maps arrive as uint8 (steps, words, gh, gw), each (step, word)
 * scaled to 255 with its raw maximum in `scales` (steps, words). Returns each word's sum, max-scaled to
 * 255 again, and its raw maximum.
 */
export function sumSteps(
  stepMaps: Uint8Array,
  scales: Float32Array,
  words: number,
  size: number,
  from: number,
  to: number,
): { maps: Uint8Array[]; peaks: number[] } {
  const maps: Uint8Array[] = [];
  const peaks: number[] = [];
  const sum = new Float32Array(size);
  for (let k = 0; k < words; k++) {
    sum.fill(0);
    for (let t = from; t < to; t++) {
      const factor = scales[t * words + k] / 255;
      if (!factor) continue;
      const base = (t * words + k) * size;
      for (let i = 0; i < size; i++) sum[i] += stepMaps[base + i] * factor;
    }
    let peak = 0;
    for (let i = 0; i < size; i++) if (sum[i] > peak) peak = sum[i];
    const out = new Uint8Array(size);
    if (peak > 0) for (let i = 0; i < size; i++) out[i] = Math.round((sum[i] / peak) * 255);
    maps.push(out);
    peaks.push(peak);
  }
  return { maps, peaks };
}

/** Maps rescaled to one shared peak (the largest of `peaks`): words compare by attention mass. */
export function shareScale(maps: Uint8Array[], peaks: number[]): Uint8Array[] {
  const top = Math.max(0, ...peaks);
  if (top <= 0) return maps;
  return maps.map((map, k) => {
    const factor = (peaks[k] ?? 0) / top;
    const out = new Uint8Array(map.length);
    for (let i = 0; i < map.length; i++) out[i] = Math.round(map[i] * factor);
    return out;
  });
}

/** For each word index, its occurrence number (1, 2, ...) among words of the same text; null if unique. */
export function occurrences(spans: Span[]): Map<number, number | null> {
  const byText = new Map<string, number[]>();
  for (const span of spans) {
    if (span.word === null) continue;
    const key = span.text.toLowerCase();
    byText.set(key, [...(byText.get(key) ?? []), span.word]);
  }
  const out = new Map<number, number | null>();
  for (const words of byText.values()) words.forEach((w, i) => out.set(w, words.length > 1 ? i + 1 : null));
  return out;
}

/** Nearest-neighbour resize of an (h, w) map to (H, W), for comparing maps of two sizes. */
export function resample(map: Uint8Array, h: number, w: number, H: number, W: number): Uint8Array {
  if (h === H && w === W) return map;
  const out = new Uint8Array(H * W);
  for (let y = 0; y < H; y++) {
    const sy = Math.min(h - 1, Math.floor(((y + 0.5) * h) / H));
    for (let x = 0; x < W; x++) out[y * W + x] = map[sy * w + Math.min(w - 1, Math.floor(((x + 0.5) * w) / W))];
  }
  return out;
}

/** Intersection over union of two masks of one size; 0 when both are empty. */
export function maskIou(a: Uint8Array, b: Uint8Array): number {
  let inter = 0;
  let union = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i] && b[i]) inter++;
    if (a[i] || b[i]) union++;
  }
  return union ? inter / union : 0;
}
