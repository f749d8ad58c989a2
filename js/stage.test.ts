// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { SPANS, context } from "./fixtures";
import { createMain, legendLines, maskLine, placedWords } from "./stage";

describe("main view", () => {
  it("names the shown word, what its colours mean, and its mask's area", () => {
    const ctx = context({ selected: 1 });
    const main = createMain(ctx);
    main.draw();
    expect(main.el.querySelector(".daam-legend-title")?.textContent).toBe("dog");
    expect(main.el.querySelector(".daam-legend-detail")?.textContent).toContain("this word's own peak");
    expect(main.el.querySelector(".daam-area")?.textContent).toBe("mask of “dog”: 25.0 % of the image at τ = 0.40");
    ctx.model.set("view", "mask");
    main.draw();
    expect(main.el.querySelector(".daam-legend-title")?.textContent).toBe("dog: Eq. 7 mask");
  });
  it("names the image and the shown map for a screen reader", () => {
    const ctx = context({ selected: 1 });
    const main = createMain(ctx);
    main.draw();
    expect(main.el.querySelector("img")?.alt).toBe(`image generated for the prompt: ${ctx.model.get("prompt")}`);
    const overlay = main.el.querySelector("canvas.daam-overlay")!;
    expect([overlay.getAttribute("role"), overlay.getAttribute("aria-label")]).toEqual([
      "img",
      "DAAM map of “dog” over the image, all 2 steps",
    ]);
    ctx.model.set("selected", null);
    main.draw();
    expect(overlay.getAttribute("aria-label")).toBeNull();
  });
  it("while generating, with no word shown, colours each pixel by the word with the most attention so far", () => {
    // the fixture's maps: word k peaks at pixel k; pixel 3 is below τ for every word
    const ctx = context({ status: "generating", progress: [1, 2] });
    expect(Array.from(placedWords(ctx.shown().maps, SPANS, 0.4)!)).toEqual([0, 1, 2, -1]);
    const cut = SPANS.map((s) => (s.word === 1 ? { ...s, available: false } : s));
    expect(Array.from(placedWords(ctx.shown().maps, cut, 0.4)!)).toEqual([0, -1, 2, -1]);
    const main = createMain(ctx);
    main.draw();
    expect(main.overlay().getAttribute("aria-label")).toBe("where each word is placed so far, steps so far (1 of 2)");
    const key = [...main.el.querySelectorAll(".daam-key")].map((k) => k.textContent);
    expect(key).toEqual(["a #1", "dog", "a #2"]);
    ctx.model.set("status", "ready");
    main.draw();
    expect(main.el.querySelectorAll(".daam-key").length).toBe(0);
    expect(main.overlay().getAttribute("aria-label")).toBeNull();
  });
  it("says which scale the legend's top is on", () => {
    expect(legendLines("dog", "all 2 steps", "shared", 2, 4)).toEqual({
      title: "dog",
      detail: "Eq. 6: attention summed over layers, heads and all 2 steps; one scale for all words (the largest peak)",
      top: "4.00",
    });
    expect(maskLine("a #2", 0.5, 0.25)).toBe("mask of “a #2”: 50.0 % of the image at τ = 0.25");
  });
});
