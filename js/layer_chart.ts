/**
 * Which layer localises the shown word: one bar per attention layer, as high as the word's attention is
 * concentrated there (`layer_focus`: 1 − normalised entropy of its map at the layer's grid), the most
 * concentrated layer full height; the caption gives its value. A click on a bar shows that layer's maps; a
 * click on the layer shown returns to all layers.
 */
import { decodeFloats } from "./codecs";
import type { Context } from "./context";
import { h } from "./dom";

const BAR = 10;
const HEIGHT = 36;

/** Each layer's focus for word `word`, from `(layers, words)` float32 values; NaN where it has none. */
export function focusOf(values: Float32Array, layers: number, words: number, word: number): number[] {
  if (values.length !== layers * words || word < 0 || word >= words) return [];
  return Array.from({ length: layers }, (_, k) => values[k * words + word]);
}

/** The layer under x, in CSS pixels from the chart's left edge; -1 past the bars. */
export function layerAt(x: number, layers: number): number {
  const k = Math.floor(x / BAR);
  return k >= 0 && k < layers ? k : -1;
}

export function createLayerChart(ctx: Context) {
  const { model } = ctx;
  const canvas = h("canvas", { class: "daam-layer-bars", height: String(HEIGHT) });
  const caption = h("span", { class: "daam-layer-caption" });
  const el = h("div", { class: "daam-layer-chart" }, [canvas, caption]);

  function draw(): void {
    const names = model.get("layer_names") ?? [];
    const words = model.get("words").length;
    const word = ctx.active();
    const values = decodeFloats(model.get("layer_focus"));
    el.hidden = values.length === 0 || values.length !== names.length * words;
    const focus = word === null || el.hidden ? [] : focusOf(values, names.length, words, word);
    // kept in the layout while no word is shown, so that hovering words moves nothing below it
    el.style.visibility = focus.length ? "visible" : "hidden";
    if (!focus.length || word === null) return;
    const shown = names.indexOf(model.get("layer"));
    const best = focus.reduce((b, v, k) => (Number.isFinite(v) && (b < 0 || v > focus[b]) ? k : b), -1);
    caption.textContent =
      best >= 0
        ? `${ctx.wordName(word)}: most concentrated in ${names[best]} (${focus[best].toFixed(2)})` +
          (shown >= 0 ? `; shown: ${names[shown]}` : "")
        : "";
    canvas.title = "how concentrated the word's attention is in each layer (1: one cell, 0: even); click a bar to show that layer";
    canvas.width = names.length * BAR;
    const g = canvas.getContext("2d");
    if (!g) return;
    g.clearRect(0, 0, canvas.width, HEIGHT);
    const top = best >= 0 && focus[best] > 0 ? focus[best] : 1;
    focus.forEach((value, k) => {
      if (!Number.isFinite(value)) return;
      const height = Math.max(1, Math.round((value / top) * (HEIGHT - 2)));
      g.fillStyle = k === shown ? "#e4572e" : k === best ? "#4a7bd0" : "#8a94a6";
      g.fillRect(k * BAR + 1, HEIGHT - height, BAR - 2, height);
    });
  }

  canvas.addEventListener("click", (event) => {
    if (!ctx.hasKernel()) return;
    const names = model.get("layer_names") ?? [];
    const k = layerAt(event.offsetX, names.length);
    if (k < 0) return;
    ctx.set("layer", model.get("layer") === names[k] ? "all" : names[k]);
    ctx.expectKernel();
  });
  return { el, draw };
}
