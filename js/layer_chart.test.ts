// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { context } from "./fixtures";
import { createLayerChart, focusOf, layerAt } from "./layer_chart";

function floats(values: number[]): DataView {
  return new DataView(new Float32Array(values).buffer);
}

describe("layer chart", () => {
  it("reads one word's focus per layer from (layers, words) values", () => {
    const values = new Float32Array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]); // 3 layers, 2 words
    expect(focusOf(values, 3, 2, 1).map((v) => Math.round(v * 10) / 10)).toEqual([0.2, 0.4, 0.6]);
    expect(focusOf(values, 2, 2, 0)).toEqual([]);
    expect(layerAt(0, 3)).toBe(0);
    expect(layerAt(25, 3)).toBe(2);
    expect(layerAt(30, 3)).toBe(-1);
  });
  it("names the layer where the selected word is most concentrated", () => {
    const words = ["a", "dog"];
    const ctx = context({
      words,
      selected: 1,
      layer_names: ["down.0", "mid", "up.1"],
      layer_focus: floats([0.1, 0.2, 0.1, 0.7, 0.1, 0.3]),
    });
    const chart = createLayerChart(ctx);
    chart.draw();
    expect(chart.el.hidden).toBe(false);
    expect(chart.el.querySelector(".daam-layer-caption")!.textContent).toMatch(/most concentrated in mid \(0\.70\)/);
    const idle = createLayerChart(context({ selected: null, words, layer_names: ["down.0"], layer_focus: floats([0.1, 0.2]) }));
    idle.draw();
    expect([idle.el.hidden, idle.el.style.visibility]).toEqual([false, "hidden"]);
    const none = createLayerChart(context({ selected: 1 }));
    none.draw();
    expect(none.el.hidden).toBe(true);
  });
});
