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

/** The current generation's record of every step (`step_maps`), or the compared one's (`other_step_maps`). */
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

/** The maps to draw, from the traits: all steps (`maps`), or a range of `step_maps` at the same size. */
export function shownMaps(model: DaamModel): Shown {
  const [a, b] = model.get("steps") ?? [0, 0];
  const total = model.get("num_steps") ?? 0;
  const size = model.get("map_size");
  const range = a === 0 && b === 0 ? null : mapsOverSteps(stepRecord(model, "current"), a, b, size);
  let shown: Shown;
  if (range) {
    shown = { ...range, size, steps: stepsLabel([a, b], total) };
  } else {
    const data = model.get("maps");
    const live = model.get("status") === "generating";
    shown = {
      maps: data ? decodeMaps(data, size[0], size[1]) : [],
      size,
      peaks: model.get("peaks") ?? [],
      steps: live ? `steps so far (${model.get("progress")[0]} of ${model.get("progress")[1]})` : stepsLabel([0, 0], total),
    };
  }
  if (model.get("scale") === "shared") shown = { ...shown, maps: shareScale(shown.maps, shown.peaks) };
  return shown;
}

/** A word's text, with its occurrence number when the prompt repeats it ("a #2"). */
export function wordName(spans: Span[], k: number): string {
  const text = spans.find((s) => s.word === k)?.text ?? String(k);
  const n = occurrences(spans).get(k);
  return n ? `${text} #${n}` : text;
}
