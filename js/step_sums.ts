/** Eq. 6 over a range of steps, and maps rescaled to a shared peak. */

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
