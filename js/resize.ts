/**
 * Resizing maps. Up: bicubic as torch's `F.interpolate(mode="bicubic", align_corners=False)` computes it (Keys'
 * cubic with a = -0.75, edge pixels repeated), the way Eq. 6 upsamples a resolution's maps: a range of
 * steps, summed on the attention grid, is drawn at the image's map size with outlines as smooth as the
 * all-steps maps'. Down: area means, for the small multiples, drawn at the size they are shown.
 */
const A = -0.75;

function near(x: number): number {
  return ((A + 2) * x - (A + 3)) * x * x + 1;
}

function far(x: number): number {
  return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
}

/** For each output index along one axis: the four source indices (clamped) and their weights. */
function taps(from: number, to: number): { index: Int32Array; weight: Float32Array } {
  const index = new Int32Array(to * 4);
  const weight = new Float32Array(to * 4);
  const scale = from / to;
  for (let i = 0; i < to; i++) {
    const source = (i + 0.5) * scale - 0.5;
    const base = Math.floor(source);
    const t = source - base;
    const w = [far(t + 1), near(t), near(1 - t), far(2 - t)];
    for (let k = 0; k < 4; k++) {
      index[i * 4 + k] = Math.min(from - 1, Math.max(0, base - 1 + k));
      weight[i * 4 + k] = w[k];
    }
  }
  return { index, weight };
}

const cached = new Map<string, { index: Int32Array; weight: Float32Array }>();

function tapsOf(from: number, to: number): { index: Int32Array; weight: Float32Array } {
  const key = `${from}>${to}`;
  let found = cached.get(key);
  if (!found) cached.set(key, (found = taps(from, to)));
  return found;
}

/** `map` (h, w) row-major, resized to (H, W): rows first, then columns. */
export function bicubic(map: Float32Array, h: number, w: number, H: number, W: number): Float32Array {
  if (h === H && w === W) return map;
  const across = tapsOf(w, W);
  const down = tapsOf(h, H);
  const wide = new Float32Array(h * W);
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let x = 0, j = 0; x < W; x++, j += 4) {
      const ix = across.index;
      const wx = across.weight;
      wide[y * W + x] =
        wx[j] * map[row + ix[j]] + wx[j + 1] * map[row + ix[j + 1]] + wx[j + 2] * map[row + ix[j + 2]] + wx[j + 3] * map[row + ix[j + 3]];
    }
  }
  const out = new Float32Array(H * W);
  for (let y = 0, j = 0; y < H; y++, j += 4) {
    const [w0, w1, w2, w3] = [down.weight[j], down.weight[j + 1], down.weight[j + 2], down.weight[j + 3]];
    const [r0, r1, r2, r3] = [down.index[j] * W, down.index[j + 1] * W, down.index[j + 2] * W, down.index[j + 3] * W];
    const at = y * W;
    for (let x = 0; x < W; x++) out[at + x] = w0 * wide[r0 + x] + w1 * wide[r1 + x] + w2 * wide[r2 + x] + w3 * wide[r3 + x];
  }
  return out;
}

/** `map` (h, w) shrunk to (H, W) <= (h, w) by area means, as torch's `F.interpolate(mode="area")`: each
 * output pixel averages the input pixels its area covers (whole pixels, as adaptive average pooling). */
export function shrink(map: Uint8Array, h: number, w: number, H: number, W: number): Uint8Array {
  if (h === H && w === W) return map;
  const out = new Uint8Array(H * W);
  for (let y = 0; y < H; y++) {
    const y0 = Math.floor((y * h) / H);
    const y1 = Math.ceil(((y + 1) * h) / H);
    for (let x = 0; x < W; x++) {
      const x0 = Math.floor((x * w) / W);
      const x1 = Math.ceil(((x + 1) * w) / W);
      let sum = 0;
      for (let yy = y0; yy < y1; yy++) for (let xx = x0; xx < x1; xx++) sum += map[yy * w + xx];
      out[y * W + x] = Math.round(sum / ((y1 - y0) * (x1 - x0)));
    }
  }
  return out;
}
