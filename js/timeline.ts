/**
 * Time: a step scrubber with a play button (the maps of step t, or of steps 1..t), a range of steps, and
 * under the scrubber a chart of where the active word's attention goes over the steps and resolutions, its
 * bars where the scrubber's thumb stands at their step; a click on a bar goes to that step.
 */
import type { Context } from "./context";
import { bytes, decodeFloats } from "./codecs";
import { h, options } from "./dom";
import { PALETTE } from "./palette";

export const PLAY_INTERVAL_MS = 120;
/** Width of the scrubber's thumb in CSS pixels (styles.ts draws it): step t's thumb is centred at
 * THUMB / 2 + t / (n - 1) * (width - THUMB), where the chart centres step t's bar. */
export const THUMB = 14;

/** The x of step t's bar centre in a chart `width` wide with `pad` on each side. */
export function stepX(t: number, n: number, width: number, pad: number): number {
  return n > 1 ? pad + (t * (width - 2 * pad)) / (n - 1) : width / 2;
}

/** The step whose bar is nearest to x. */
export function stepAt(x: number, n: number, width: number, pad: number): number {
  if (n <= 1) return 0;
  return Math.max(0, Math.min(n - 1, Math.round(((x - pad) * (n - 1)) / (width - 2 * pad))));
}

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

/** Draw a word's attention per step as bars stacked by resolution (palette colours), bar t centred at
 * `stepX(t)` (by default each bar fills its share of the width); steps outside `steps` (unless it is all)
 * are faded. */
export function drawMass(canvas: HTMLCanvasElement, series: number[][], steps: [number, number], pad?: number): void {
  const c = canvas.getContext("2d");
  if (!c) return;
  c.clearRect(0, 0, canvas.width, canvas.height);
  const n = series.length;
  const edge = pad ?? canvas.width / (2 * Math.max(n, 1));
  const spacing = n > 1 ? (canvas.width - 2 * edge) / (n - 1) : canvas.width - 2 * edge;
  const top = Math.max(1e-30, ...series.map((row) => row.reduce((a, b) => a + b, 0)));
  const [a, b] = steps;
  const width = Math.max(spacing - 1, 1);
  for (let t = 0; t < n; t++) {
    const inRange = (a === 0 && b === 0) || (t >= a && t < b);
    const x = stepX(t, n, canvas.width, edge) - width / 2;
    let y = canvas.height;
    series[t].forEach((value, i) => {
      const height = (value / top) * (canvas.height - 2);
      c.fillStyle = `rgba(${PALETTE[i % PALETTE.length].join(",")},${inRange ? 1 : 0.3})`;
      c.fillRect(x, y - height, width, height);
      y -= height;
    });
  }
}

/** Numbers (from 1) under the first, middle and last of `n` bars of a chart `width` wide, each under its
 * bar as `stepX` places it. */
export function drawAxis(axis: HTMLElement, n: number, width: number): void {
  const marks = [...new Set([0, n > 4 ? Math.floor((n - 1) / 2) : 0, n - 1])];
  axis.replaceChildren(
    ...marks.map((t) => {
      const mark = h("span", {}, [String(t + 1)]);
      mark.style.left = `${stepX(t, n, width, THUMB / 2)}px`;
      return mark;
    }),
  );
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
  chart.height = 64;
  const axis = h("div", { class: "daam-axis", "aria-hidden": "true" });
  const track = h("div", { class: "daam-track" }, [scrubber, chart, axis]);
  const chartKey = h("div", { class: "daam-mass-key" });
  const el = h("div", { class: "daam-timeline" }, [
    h("div", { class: "daam-row daam-steps" }, [
      play,
      track,
      h("div", { class: "daam-step-options" }, [
        h("div", { class: "daam-row" }, [mode, all]),
        h("div", { class: "daam-row" }, ["range", stepFrom, "to", stepTo]),
        label,
      ]),
    ]),
    chartKey,
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
  chart.addEventListener("click", (event) => {
    const box = chart.getBoundingClientRect();
    const t = stepAt(event.clientX - box.left, total(), box.width, THUMB / 2);
    show(stepsAt(model.get("step_mode"), t));
  });
  stepFrom.addEventListener("change", onRange);
  stepTo.addEventListener("change", onRange);

  function drawChart(): void {
    const word = ctx.active();
    const series = word === null ? null : massSeries(ctx, word);
    const n = total();
    const width = Math.round(track.clientWidth) || 360;
    if (chart.width !== width) chart.width = width;
    drawAxis(axis, n, width);
    chart.setAttribute("role", "img");
    if (series === null || word === null) {
      chart.getContext("2d")?.clearRect(0, 0, chart.width, chart.height);
      chart.setAttribute("aria-label", "attention per step: hover or select a word");
      chartKey.replaceChildren("Hover a word for its attention per step, by resolution; click a bar to go to its step.");
      return;
    }
    chart.setAttribute("aria-label", `attention of “${ctx.wordName(word)}” per step, by resolution`);
    chartKey.replaceChildren(
      h("span", {}, [`attention of “${ctx.wordName(word)}” per step, by resolution: `]),
      ...model.get("resolutions").map((name, i) => {
        const swatch = h("span", { class: "daam-swatch" });
        swatch.style.background = `rgb(${PALETTE[i % PALETTE.length].join(",")})`;
        return h("span", {}, [swatch, `${name} `]);
      }),
    );
    drawMass(chart, series, model.get("steps"), THUMB / 2);
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
