/**
 * Time: a step scrubber with a play button (the maps of step t, or of steps 1..t), a range of steps, and
 * a chart of where the active word's attention goes over the steps and resolutions.
 */
import type { Context } from "./context";
import { bytes, decodeFloats } from "./codecs";
import { h, options } from "./dom";
import { PALETTE } from "./palette";

export const PLAY_INTERVAL_MS = 120;

/** The steps shown at scrubber position t (0-based). */
export function stepsAt(mode: "single" | "cumulative", t: number): [number, number] {
  return mode === "single" ? [t, t + 1] : [0, t + 1];
}

/** The scrubber position of a steps range: its last step. */
export function positionOf(steps: [number, number], total: number): number {
  const [a, b] = steps;
  return a === 0 && b === 0 ? total - 1 : b - 1;
}

/** Word k's attention per step and resolution, from `step_mass` (steps, resolutions, words). */
export function massOf(mass: Float32Array, steps: number, resolutions: number, words: number, k: number): number[][] {
  const out: number[][] = [];
  for (let t = 0; t < steps; t++) {
    const row: number[] = [];
    for (let r = 0; r < resolutions; r++) row.push(mass[(t * resolutions + r) * words + k]);
    out.push(row);
  }
  return out;
}

/** Draw a word's attention per step as bars stacked by resolution (palette colours); steps outside
 * `steps` (unless it is all) are faded. */
export function drawMass(canvas: HTMLCanvasElement, series: number[][], steps: [number, number]): void {
  const c = canvas.getContext("2d");
  if (!c) return;
  c.clearRect(0, 0, canvas.width, canvas.height);
  const n = series.length;
  const top = Math.max(1e-30, ...series.map((row) => row.reduce((a, b) => a + b, 0)));
  const [a, b] = steps;
  const width = canvas.width / Math.max(n, 1);
  for (let t = 0; t < n; t++) {
    const inRange = (a === 0 && b === 0) || (t >= a && t < b);
    let y = canvas.height;
    series[t].forEach((value, i) => {
      const height = (value / top) * (canvas.height - 2);
      c.fillStyle = `rgba(${PALETTE[i % PALETTE.length].join(",")},${inRange ? 1 : 0.3})`;
      c.fillRect(t * width + 0.5, y - height, Math.max(width - 1, 1), height);
      y -= height;
    });
  }
}

/** Every word's series, from the traits; null where the model has no per-step mass. */
export function massSeries(ctx: Context, k: number): number[][] | null {
  const { model } = ctx;
  const n = model.get("num_steps") ?? 0;
  const r = Math.max(model.get("resolutions").length, 1);
  const words = model.get("words").length;
  const mass = decodeFloats(model.get("step_mass"));
  if (n === 0 || mass.length !== n * r * words || k < 0 || k >= words) return null;
  return massOf(mass, n, r, words, k);
}

export function createTimeline(ctx: Context) {
  const { model } = ctx;
  const play = h("button", { class: "daam-play", type: "button", "aria-label": "play the steps" }, ["▶"]);
  const scrubber = h("input", { class: "daam-scrubber", type: "range", min: "0", step: "1", "aria-label": "step" });
  const mode = h("select", { class: "daam-step-mode", "aria-label": "what a step position shows" });
  options(mode, ["single", "cumulative"], ["that step", "steps up to it"]);
  const all = h("button", { class: "daam-all-steps", type: "button" }, ["all steps"]);
  const stepFrom = h("input", { class: "daam-step-from", type: "number", min: "1", step: "1", "aria-label": "first step" });
  const stepTo = h("input", { class: "daam-step-to", type: "number", min: "1", step: "1", "aria-label": "last step" });
  const label = h("span", { class: "daam-steps-label" });
  const chart = h("canvas", { class: "daam-mass-chart" });
  chart.width = 360;
  chart.height = 64;
  const chartKey = h("div", { class: "daam-mass-key" });
  const chartBox = h("div", { class: "daam-mass" }, [chart, chartKey]);
  const el = h("div", { class: "daam-timeline" }, [
    h("div", { class: "daam-row daam-steps" }, [play, "step", scrubber, mode, all, "range", stepFrom, "to", stepTo, label]),
    chartBox,
  ]);
  let timer: ReturnType<typeof setInterval> | null = null;

  function total(): number {
    return model.get("num_steps") ?? 0;
  }
  function show(steps: [number, number]): void {
    const n = total();
    const full = steps[0] === 0 && steps[1] === n;
    ctx.set("steps", full ? [0, 0] : steps);
  }
  function stop(): void {
    if (timer !== null) clearInterval(timer);
    timer = null;
    ctx.view.playing = false;
    play.textContent = "▶";
  }
  play.addEventListener("click", () => {
    if (timer !== null) return stop();
    ctx.view.playing = true;
    play.textContent = "⏸";
    const at = positionOf(model.get("steps"), total());
    let t = at >= total() - 1 ? -1 : at; // from the start when at the last step (or all steps)
    timer = setInterval(() => {
      t += 1;
      if (t >= total()) return stop();
      show(stepsAt(model.get("step_mode"), t));
    }, PLAY_INTERVAL_MS);
  });
  scrubber.addEventListener("input", () => show(stepsAt(model.get("step_mode"), Number(scrubber.value))));
  mode.addEventListener("change", () => {
    ctx.set("step_mode", mode.value as "single" | "cumulative");
    show(stepsAt(model.get("step_mode"), Number(scrubber.value)));
  });
  all.addEventListener("click", () => show([0, total()]));
  const onRange = () => {
    const n = total();
    const from = Math.max(1, Math.min(n, Math.round(Number(stepFrom.value))));
    const to = Math.max(from, Math.min(n, Math.round(Number(stepTo.value))));
    show([from - 1, to]);
  };
  stepFrom.addEventListener("change", onRange);
  stepTo.addEventListener("change", onRange);

  function drawChart(): void {
    const word = ctx.active();
    const series = word === null ? null : massSeries(ctx, word);
    chartBox.hidden = series === null;
    if (series === null || word === null) return;
    chartKey.replaceChildren(
      h("span", {}, [`attention of “${ctx.wordName(word)}” per step, by resolution: `]),
      ...model.get("resolutions").map((name, i) => {
        const swatch = h("span", { class: "daam-swatch" });
        swatch.style.background = `rgb(${PALETTE[i % PALETTE.length].join(",")})`;
        return h("span", {}, [swatch, `${name} `]);
      }),
    );
    drawMass(chart, series, model.get("steps"));
  }

  function draw(): void {
    const n = total();
    el.hidden = n === 0 || bytes(model.get("step_maps")).length === 0;
    if (el.hidden) {
      stop();
      return;
    }
    const steps = model.get("steps");
    scrubber.max = String(n - 1);
    scrubber.value = String(positionOf(steps, n));
    mode.value = model.get("step_mode");
    stepFrom.max = stepTo.max = String(n);
    const [a, b] = steps[0] === 0 && steps[1] === 0 ? [0, n] : steps;
    if (document.activeElement !== stepFrom) stepFrom.value = String(a + 1);
    if (document.activeElement !== stepTo) stepTo.value = String(b);
    label.textContent = `showing ${ctx.shown().steps}`;
    drawChart();
  }

  return { el, draw, drawChart, stop };
}
