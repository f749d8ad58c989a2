/** Eq. 6 over a range of steps, drawn at the maps' size, and maps rescaled to a shared peak. */
import { bicubic } from "./resize";

/**
 * Each word's raw Eq. 6 sum over the steps [from, to), on the step grid: step maps arrive as uint8
 * (steps, words, size), each (step, word) scaled to 255 with its raw maximum in `scales` (steps, words).
 */
export function sumSteps(
  stepMaps: Uint8Array,
  scales: Float32Array,
  words: number,
  size: number,
  from: number,
  to: number,
): Float32Array[] {
  const sums: Float32Array[] = [];
  for (let k = 0; k < words; k++) {
    const sum = new Float32Array(size);
    for (let t = from; t < to; t++) {
      const factor = scales[t * words + k] / 255;
      if (!factor) continue;
      const base = (t * words + k) * size;
      for (let i = 0; i < size; i++) sum[i] += stepMaps[base + i] * factor;
    }
    sums.push(sum);
  }
  return sums;
}

/** Raw maps as uint8 scaled so each maximum is 255 (below zero, where bicubic undershoots: 0), and the
 * maxima. */
export function quantize(raw: Float32Array[]): { maps: Uint8Array[]; peaks: number[] } {
  const maps: Uint8Array[] = [];
  const peaks: number[] = [];
  for (const map of raw) {
    let peak = 0;
    for (let i = 0; i < map.length; i++) if (map[i] > peak) peak = map[i];
    const out = new Uint8ClampedArray(map.length); // rounds half to even and clamps, as the kernel's torch does
    const factor = peak > 0 ? 255 / peak : 0;
    for (let i = 0; i < map.length; i++) out[i] = map[i] * factor;
    maps.push(new Uint8Array(out.buffer));
    peaks.push(peak);
  }
  return { maps, peaks };
}

/** One generation's record of every step: uint8 maps, their maxima, the steps and the grid. */
export type StepRecord = { maps: Uint8Array; scales: Float32Array; steps: number; grid: [number, number] };

/** Eq. 6 over the steps [from, to) at `size`: summed on the step grid, then upsampled bicubically as the
 * all-steps maps are; null where the record has no such steps. */
export function mapsOverSteps(
  record: StepRecord,
  from: number,
  to: number,
  size: [number, number],
): { maps: Uint8Array[]; peaks: number[] } | null {
  const [gh, gw] = record.grid;
  if (!record.maps.length || gh * gw === 0 || to > record.steps || from >= to) return null;
  const words = record.maps.length / (record.steps * gh * gw);
  const sums = sumSteps(record.maps, record.scales, words, gh * gw, from, to);
  return quantize(sums.map((sum) => bicubic(sum, gh, gw, size[0], size[1])));
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
