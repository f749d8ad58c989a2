/**
 * A video's frames: a play button, a frame scrubber, and under it the active word's share of its attention
 * in each frame (one bar a frame, the frame shown full strength); a click on a bar shows that frame. Frames
 * play in the browser at `fps`; the frame shown reaches the kernel when the playing stops.
 */
import { bytes, decodeFloats } from "./codecs";
import type { Context } from "./context";
import { h } from "./dom";
import { THUMB, drawAxis, drawMass, stepAt } from "./timeline";

/** Word k's share of its attention in each frame, from `frame_mass` (words, frames); null without it. */
export function frameShares(mass: Float32Array, words: number, frames: number, k: number): number[] | null {
  if (frames === 0 || mass.length !== words * frames || k < 0 || k >= words) return null;
  return Array.from(mass.subarray(k * frames, (k + 1) * frames));
}

/** The frame after `frame` when playing, from the first again after the last; null to stop there. */
export function nextFrame(frame: number, frames: number, loop: boolean): number | null {
  if (frame + 1 < frames) return frame + 1;
  return loop ? 0 : null;
}

export function createPlayer(ctx: Context) {
  const { model } = ctx;
  const play = h("button", { class: "daam-play-frames", type: "button", "aria-label": "play the video" }, ["▶"]);
  const scrubber = h("input", { class: "daam-frame-scrubber", type: "range", min: "0", step: "1", "aria-label": "frame" });
  const label = h("span", { class: "daam-frame-label" });
  const loop = h("input", { class: "daam-loop", type: "checkbox", checked: "" });
  const perFrame = h("input", { class: "daam-per-frame", type: "checkbox" });
  const chart = h("canvas", { class: "daam-frame-chart" });
  chart.height = 40;
  const axis = h("div", { class: "daam-frame-axis", "aria-hidden": "true" });
  const track = h("div", { class: "daam-frame-track" }, [scrubber, chart, axis]);
  const key = h("div", { class: "daam-frame-key" });
  const el = h("div", { class: "daam-player" }, [
    h("div", { class: "daam-row daam-frame-row" }, [
      play,
      track,
      h("div", { class: "daam-frame-options" }, [
        label,
        h("label", {}, [loop, "loop"]),
        h("label", { title: "scale each frame's map, and its Eq. 7 mask, to the word's peak in that frame" }, [
          perFrame,
          "scale per frame",
        ]),
      ]),
    ]),
    key,
  ]);
  let timer: ReturnType<typeof setInterval> | null = null;

  const frames = () => (model.get("frame_sources") ?? []).length;
  /** Show frame j; while playing only here (the kernel hears of it when the playing stops). */
  function show(j: number): void {
    if (timer !== null) model.set("frame", j);
    else ctx.set("frame", j);
  }
  function stop(): void {
    if (timer === null) return;
    clearInterval(timer);
    timer = null;
    play.textContent = "▶";
    play.setAttribute("aria-label", "play the video");
    ctx.save();
  }
  function start(): void {
    const n = frames();
    if (n < 2) return;
    if (model.get("frame") >= n - 1) show(0);
    play.textContent = "⏸";
    play.setAttribute("aria-label", "pause the video");
    timer = setInterval(() => {
      const next = nextFrame(model.get("frame"), frames(), loop.checked);
      if (next === null) stop();
      else model.set("frame", next);
    }, 1000 / Math.max(model.get("fps") || 8, 0.5));
  }
  play.addEventListener("click", () => (timer !== null ? stop() : start()));
  scrubber.addEventListener("input", () => show(Number(scrubber.value)));
  perFrame.addEventListener("change", () => ctx.set("per_frame", perFrame.checked));
  chart.addEventListener("click", (event) => {
    const box = chart.getBoundingClientRect();
    show(stepAt(event.clientX - box.left, frames(), box.width, THUMB / 2));
  });

  function drawChart(): void {
    const n = frames();
    const word = ctx.active();
    const width = Math.round(track.clientWidth) || 360;
    if (chart.width !== width) chart.width = width;
    drawAxis(axis, n, width);
    const shares = word === null ? null : frameShares(decodeFloats(model.get("frame_mass")), model.get("words").length, n, word);
    chart.setAttribute("role", "img");
    if (shares === null || word === null) {
      chart.getContext("2d")?.clearRect(0, 0, chart.width, chart.height);
      chart.setAttribute("aria-label", "attention per frame: hover or select a word");
      key.textContent = "Hover a word for where its attention falls over the frames; click a bar to go to its frame.";
      return;
    }
    const frame = model.get("frame");
    chart.setAttribute("aria-label", `share of the attention of “${ctx.wordName(word)}” in each frame`);
    key.textContent = `share of the attention of “${ctx.wordName(word)}” in each frame: ${(100 * (shares[frame] ?? 0)).toFixed(1)} % in frame ${frame + 1}`;
    drawMass(chart, shares.map((v) => [v]), [frame, frame + 1], THUMB / 2);
  }

  function draw(): void {
    const n = frames();
    el.hidden = n === 0;
    if (el.hidden) return stop();
    const frame = model.get("frame");
    scrubber.max = String(n - 1);
    scrubber.value = String(frame);
    const sources = model.get("frame_sources");
    const decoded = bytes(model.get("video")).length > 0;
    label.textContent = decoded
      ? `frame ${frame + 1} of ${n} (latent frame ${sources[frame] + 1} of ${model.get("latent_frames")})`
      : `latent frame ${frame + 1} of ${n}`;
    perFrame.checked = model.get("per_frame");
    play.disabled = n < 2;
    drawChart();
  }

  /** Play again at the new speed. */
  function retime(): void {
    if (timer === null) return;
    clearInterval(timer);
    timer = null;
    start();
  }

  return { el, draw, drawChart, stop, retime };
}
