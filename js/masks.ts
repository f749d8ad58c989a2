/** Eq. 7 masks of max-normalised uint8 maps, and what is measured on them: area, outline, argmax, IoU. */

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
