/**
 * What every component of the view shares: the model (the widget's traits), the transient view state
 * (the hovered word, whether the steps are playing), and the maps drawn now, derived from the traits.
 */
import type { AnyModel } from "@anywidget/types";
import { bytes, decodeFloats, decodeMaps } from "./codecs";
import type { ColormapName } from "./colormaps";
import type { View } from "./overlays";
import { type StepRecord, mapsOverSteps, shareScale } from "./step_sums";
import { type Span, occurrences } from "./words";

export type DaamState = {
  prompt: string;
  words: string[];
  spans: Span[];
  words_text: string;
  image: DataView | null;
  image_size: [number, number];
  maps: DataView | null;
  map_size: [number, number];
  peaks: number[];
  selected: number | null;
  pinned: number[];
  tau: number;
  view: View;
  scale: "word" | "shared";
  opacity: number;
  colormap: ColormapName;
  compare: "side" | "argmax";
  grid: boolean;
  resolution: string;
  resolutions: string[];
  layer: string;
  layer_names: string[];
  layer_focus: DataView | null;
  map_grid: [number, number];
  map_kind: "daam" | "renormalized" | "concepts";
  concepts: string[];
  concepts_available: boolean;
  map_note: string;
  steps: [number, number];
  step_mode: "single" | "cumulative";
  num_steps: number;
  step_maps: DataView | null;
  step_scales: DataView | null;
  step_grid: [number, number];
  step_mass: DataView | null;
  latent_frames: number;
  frame_sources: number[];
  frame: number;
  video: DataView | null;
  video_frames: [number, number][];
  frame_mass: DataView | null;
  fps: number;
  per_frame: boolean;
  history: { prompt: string; seed: number; words: string[]; thumbnail: [number, number] }[];
  history_thumbnails: DataView | null;
  compare_to: number;
  other: {
    prompt?: string;
    seed?: number;
    words?: string[];
    map_size?: [number, number];
    peaks?: number[];
    num_steps?: number;
    step_grid?: [number, number];
  };
  other_image: DataView | null;
  other_maps: DataView | null;
  other_step_maps: DataView | null;
  other_step_scales: DataView | null;
  status: "idle" | "generating" | "ready" | "error";
  progress: [number, number];
  error: string;
  message: string;
  can_generate: boolean;
  seed: number;
  has_kernel?: boolean;
};

export type DaamModel = AnyModel<DaamState>;

export type Shown = {
  /** One uint8 map per word, max-scaled to 255 (or to the shared peak), at `size`. */
  maps: Uint8Array[];
  size: [number, number];
  /** Each word's raw maximum in what is shown. */
  peaks: number[];
  /** What the maps sum, for the legend: "all 30 steps", "step 4 of 30", "steps 0-9 of 30". */
  steps: string;
  /** What each word's colours are scaled to: "this word's peak over the clip" for a video. */
  peakOf?: string;
};

export type Context = {
  model: DaamModel;
  view: { hovered: number | null; playing: boolean };
  shown(): Shown;
  imageUrl(): string;
  active(): number | null;
  wordName(k: number): string;
  hasKernel(): boolean;
  set<K extends keyof DaamState>(key: K, value: DaamState[K]): void;
  /** Send the traits set with `model.set` to the kernel (the widget says so when it has none). */
  save(): void;
  askKernel(content: Record<string, unknown>): void;
  expectKernel(): void;
  /** Redraw what depends on the hovered word. */
  refresh(): void;
};

/** What `steps` sums, in words. */
export function stepsLabel(steps: [number, number], total: number): string {
  const [a, b] = steps;
  if ((a === 0 && b === 0) || (a === 0 && b === total)) return total ? `all ${total} steps` : "all steps";
  if (b === a + 1) return `step ${a + 1} of ${total}`;
  return `steps ${a + 1}–${b} of ${total}`;
}

/** The current generation's record of every step (`step_maps`; a video's holds every latent frame's, see
 * `frameBlock`), or the compared one's (`other_step_maps`). */
export function stepRecord(model: DaamModel, which: "current" | "other"): StepRecord {
  if (which === "current") {
    return {
      maps: bytes(model.get("step_maps")),
      scales: decodeFloats(model.get("step_scales")),
      steps: model.get("num_steps") ?? 0,
      grid: model.get("step_grid") ?? [0, 0],
    };
  }
  const other = model.get("other") ?? {};
  return {
    maps: bytes(model.get("other_step_maps")),
    scales: decodeFloats(model.get("other_step_scales")),
    steps: other.num_steps ?? 0,
    grid: other.step_grid ?? [0, 0],
  };
}

/** Latent frame `frame`'s part of a video's step record, whose latent frames' records follow each other. */
export function frameBlock(record: StepRecord, frames: number, frame: number): StepRecord {
  if (frames <= 1) return record;
  const maps = record.maps.length / frames;
  const scales = record.scales.length / frames;
  return {
    ...record,
    maps: record.maps.subarray(frame * maps, (frame + 1) * maps),
    scales: record.scales.subarray(frame * scales, (frame + 1) * scales),
  };
}

/** The latent frame whose maps the shown frame of a video has (0 for an image). */
export function latentFrame(model: DaamModel): number {
  const sources = model.get("frame_sources") ?? [];
  return sources[Math.min(Math.max(model.get("frame") ?? 0, 0), sources.length - 1)] ?? 0;
}

/** The maps to draw, from the traits: all steps (`maps`), or a range of `step_maps` at the same size; of a
 * video, those of the frame shown. */
export function shownMaps(model: DaamModel): Shown {
  const [a, b] = model.get("steps") ?? [0, 0];
  const total = model.get("num_steps") ?? 0;
  const size = model.get("map_size");
  const frames = model.get("latent_frames") ?? 0;
  const live = model.get("status") === "generating";
  const label = live ? `steps so far (${model.get("progress")[0]} of ${model.get("progress")[1]})` : stepsLabel([a, b], total);
  let shown: Shown;
  if (frames > 0) {
    const peakOf = model.get("per_frame") ? "this word's peak in this frame" : "this word's peak over the clip";
    shown = { ...videoFrameMaps(model, frames, a === 0 && b === 0 ? null : [a, b]), size, steps: label + frameLabel(model), peakOf };
  } else {
    const range = a === 0 && b === 0 ? null : mapsOverSteps(stepRecord(model, "current"), a, b, size);
    const data = model.get("maps");
    shown = range
      ? { ...range, size, steps: label }
      : { maps: data ? decodeMaps(data, size[0], size[1]) : [], size, peaks: model.get("peaks") ?? [], steps: label };
  }
  if (model.get("scale") === "shared") shown = { ...shown, maps: shareScale(shown.maps, shown.peaks) };
  return shown;
}

/** "; frame 3 of 49" where a video is shown. */
function frameLabel(model: DaamModel): string {
  const n = (model.get("frame_sources") ?? []).length;
  return n ? `; frame ${(model.get("frame") ?? 0) + 1} of ${n}` : "";
}

/**
 * A video's maps at the frame shown, over all steps or the steps [a, b): each word scaled to its peak over
 * the whole clip (so Eq. 7's τ is a share of the clip's peak), or with `per_frame` to its peak in this frame.
 * Every latent frame is upsampled once for the clip's peaks (and kept while the steps stay).
 */
function videoFrameMaps(model: DaamModel, frames: number, steps: [number, number] | null): { maps: Uint8Array[]; peaks: number[] } {
  const each = clipMaps(model, frames, steps);
  const own = each[latentFrame(model)];
  if (!own) return { maps: [], peaks: [] };
  const peaks = own.peaks.map((_, k) => Math.max(0, ...each.map((e) => e?.peaks[k] ?? 0)));
  if (model.get("per_frame")) return own;
  return { maps: own.maps.map((m, k) => rescale(m, peaks[k] ? own.peaks[k] / peaks[k] : 0)), peaks };
}

type FrameMaps = { maps: Uint8Array[]; peaks: number[] } | null;
let clipCache: { key: unknown[]; value: FrameMaps[] } | null = null;

/** Every latent frame's maps at `map_size`, each at its own peak: from `maps` (the sums over all steps, at
 * the token grid) or summed over the steps [a, b) of the record. */
function clipMaps(model: DaamModel, frames: number, steps: [number, number] | null): FrameMaps[] {
  const size = model.get("map_size");
  const key = [model.get("maps"), model.get("step_maps"), model.get("peaks"), steps?.[0], steps?.[1], size[0], size[1]];
  if (clipCache && clipCache.key.every((v, i) => v === key[i])) return clipCache.value;
  const record: StepRecord =
    steps === null
      ? { maps: bytes(model.get("maps")), scales: Float32Array.from(model.get("peaks") ?? []), steps: 1, grid: model.get("map_grid") }
      : stepRecord(model, "current");
  const [a, b] = steps ?? [0, 1];
  const value = Array.from({ length: frames }, (_, g) => mapsOverSteps(frameBlock(record, frames, g), a, b, size));
  clipCache = { key, value };
  return value;
}

function rescale(map: Uint8Array, factor: number): Uint8Array {
  const out = new Uint8ClampedArray(map.length);
  for (let i = 0; i < map.length; i++) out[i] = map[i] * factor;
  return new Uint8Array(out.buffer);
}

/** A word's text, with its occurrence number when the prompt repeats it ("a #2"). */
export function wordName(spans: Span[], k: number): string {
  const text = spans.find((s) => s.word === k)?.text ?? String(k);
  const n = occurrences(spans).get(k);
  return n ? `${text} #${n}` : text;
}
