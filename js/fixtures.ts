/** Test fixtures: a model of a small generation (three words, two steps) and a context on it. */
import { type Context, type DaamModel, type DaamState, shownMaps, wordName } from "./context";
import { localModel } from "./local_model";

export const SPANS = [
  { text: "a", start: 0, end: 1, word: 0, available: true },
  { text: "dog", start: 2, end: 5, word: 1, available: true },
  { text: "a", start: 6, end: 7, word: 2, available: true },
];

function view(values: number[] | Float32Array, float = false): DataView {
  const bytes = float ? new Uint8Array(new Float32Array(values).buffer) : new Uint8Array(values);
  return new DataView(bytes.buffer);
}

/** Maps of 2x2 pixels: word k's all-steps map is [k, 255, 0, 0]-ish; step t of word k peaks at pixel t. */
export function state(overrides: Partial<DaamState> = {}): DaamState {
  const stepMaps: number[] = [];
  for (let t = 0; t < 2; t++) for (let k = 0; k < 3; k++) stepMaps.push(...[0, 1, 2, 3].map((i) => (i === t ? 255 : 0)));
  return {
    prompt: "a dog a",
    words: ["a", "dog", "a"],
    spans: SPANS,
    image: null,
    image_size: [2, 2],
    maps: view([255, 0, 0, 0, 0, 255, 0, 0, 0, 0, 255, 0]),
    map_size: [2, 2],
    peaks: [1, 2, 4],
    selected: null,
    pinned: [],
    tau: 0.4,
    view: "heat",
    scale: "word",
    opacity: 0.6,
    colormap: "inferno",
    compare: "side",
    grid: true,
    resolution: "all",
    resolutions: ["2x2", "1x1"],
    words_text: "",
    layer: "all",
    layer_names: [],
    layer_focus: null,
    map_grid: [0, 0],
    map_kind: "daam",
    concepts: [],
    concepts_available: false,
    map_note: "",
    steps: [0, 0],
    step_mode: "single",
    num_steps: 2,
    step_maps: view(stepMaps),
    // step 0 of each word weighs 1, step 1 weighs 3
    step_scales: view([1, 1, 1, 3, 3, 3], true),
    step_grid: [2, 2],
    // (steps, resolutions, words)
    step_mass: view([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], true),
    latent_frames: 0,
    frame_sources: [],
    frame: 0,
    video: null,
    video_frames: [],
    frame_mass: null,
    fps: 8,
    per_frame: false,
    history: [],
    history_thumbnails: null,
    compare_to: -1,
    other: {},
    other_image: null,
    other_maps: null,
    other_step_maps: null,
    other_step_scales: null,
    status: "ready",
    progress: [2, 2],
    error: "",
    message: "",
    can_generate: true,
    seed: 0,
    ...overrides,
  };
}

/** A video of three frames from two latent frames (frame 0 alone, frames 1 and 2 from latent frame 1), the
 * words of `state`, two steps, maps at a 2x2 token grid shown at 2x2. All steps: latent frame 0 has a 255
 * (raw 2, 1, 1) in pixels 0, 1, 2 for words 0, 1, 2; latent frame 1 has one (raw 1, 4, 8) in pixels 3, 1,
 * 2. Steps: step 0 puts every word at pixel 0 with weight 1 in latent frame 0 and at pixel 1 with weight
 * 2 in latent frame 1; step 1 puts them at pixel 2 with weight 3. */
export function videoState(overrides: Partial<DaamState> = {}): Partial<DaamState> {
  const one = (pixel: number) => [0, 1, 2, 3].map((i) => (i === pixel ? 255 : 0));
  const stepMaps: number[] = [];
  const scales: number[] = [];
  for (const [pixel, weight] of [
    [0, 1],
    [1, 2],
  ]) {
    for (let k = 0; k < 3; k++) stepMaps.push(...one(pixel));
    for (let k = 0; k < 3; k++) stepMaps.push(...one(2));
    scales.push(weight, weight, weight, 3, 3, 3);
  }
  return {
    latent_frames: 2,
    frame_sources: [0, 1, 1],
    map_grid: [2, 2],
    maps: view([...one(0), ...one(1), ...one(2), ...one(3), ...one(1), ...one(2)]),
    peaks: [2, 1, 1, 1, 4, 8],
    step_maps: view(stepMaps),
    step_scales: view(scales, true),
    // (words, frames)
    frame_mass: view([0.5, 0.25, 0.25, 0.2, 0.4, 0.4, 0, 0.5, 0.5], true),
    ...overrides,
  };
}

export function context(overrides: Partial<DaamState> = {}): Context & { sent: Record<string, unknown>[] } {
  const model = localModel(state(overrides) as unknown as Record<string, unknown>) as unknown as DaamModel;
  const sent: Record<string, unknown>[] = [];
  const ctx = {
    model,
    sent,
    view: { hovered: null as number | null, playing: false },
    shown: () => shownMaps(model),
    imageUrl: () => "",
    active: () => (ctx.view.hovered !== null ? ctx.view.hovered : model.get("selected")),
    wordName: (k: number) => wordName(model.get("spans"), k),
    hasKernel: () => model.get("has_kernel") !== false,
    set: <K extends keyof DaamState>(key: K, value: DaamState[K]) => {
      model.set(key, value);
      model.save_changes();
    },
    save: () => model.save_changes(),
    askKernel: (content: Record<string, unknown>) => void sent.push(content),
    expectKernel: () => {},
    refresh: () => {},
  };
  return ctx;
}
