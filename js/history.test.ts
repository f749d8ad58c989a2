// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { context } from "./fixtures";
import { createHistory, matchWord } from "./history";

describe("history", () => {
  it("matches a word to the same occurrence of it in the other prompt, in any case", () => {
    expect(matchWord(["A", "dog", "a"], 0, ["a", "cat", "A"])).toBe(0);
    expect(matchWord(["A", "dog", "a"], 2, ["a", "cat", "A"])).toBe(2);
    expect(matchWord(["a", "dog", "a"], 2, ["a", "dog"])).toBe(-1);
    expect(matchWord(["cat"], 0, ["dog"])).toBe(-1);
  });
  it("lists the generations and asks the kernel for one to compare", () => {
    const thumbs = new Uint8Array([1, 2, 3]);
    const ctx = context({
      history: [
        { prompt: "a dog a", seed: 0, words: ["a", "dog", "a"], thumbnail: [0, 1] },
        { prompt: "a cat", seed: 1, words: ["a", "cat"], thumbnail: [1, 2] },
      ],
      history_thumbnails: new DataView(thumbs.buffer),
    });
    const history = createHistory(ctx);
    history.drawStrip();
    const items = history.el.querySelectorAll<HTMLButtonElement>(".daam-history-item");
    expect(items.length).toBe(2);
    items[1].click();
    expect(ctx.model.get("compare_to")).toBe(1);
  });
  it("prints the IoU of the shown word's masks in both generations", () => {
    // the other generation's "dog" covers pixels 1 and 2; this one's covers pixel 1: IoU 1/2
    const ctx = context({
      selected: 1,
      compare_to: 0,
      other: { prompt: "a dog", seed: 3, words: ["a", "dog"], map_size: [2, 2], peaks: [1, 1] },
      other_maps: new DataView(new Uint8Array([255, 0, 0, 0, 0, 255, 255, 0]).buffer),
      other_image: new DataView(new Uint8Array([0]).buffer),
    });
    const history = createHistory(ctx);
    history.drawPanel();
    expect(history.el.querySelector(".daam-iou")?.textContent).toBe("IoU of “dog” at τ = 0.40: 0.500");
    expect(history.el.querySelectorAll(".daam-history-compare figure").length).toBe(2);
    expect(history.el.querySelector(".daam-compare-steps")?.textContent).toBe("both over all their steps");
  });
  // The other generation: 2 steps, words "a", "dog", "a" on a 2x2 grid; at step 2 its first "a" is at
  // pixel 3 and its second "a" at pixel 1, where this one's second "a" is at step 2 (fixture).
  const otherSteps = (steps: number) => ({
    selected: 2,
    compare_to: 0,
    steps: [1, 2] as [number, number],
    other: { prompt: "a dog a", seed: 3, words: ["a", "dog", "a"], map_size: [2, 2] as [number, number], peaks: [1, 1, 1], num_steps: steps, step_grid: [2, 2] as [number, number] },
    other_maps: new DataView(new Uint8Array([255, 0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0]).buffer),
    other_step_maps: new DataView(
      new Uint8Array([0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 0, 255, 0, 0, 0, 255, 0, 255, 0, 0]).buffer,
    ),
    other_step_scales: new DataView(new Float32Array([1, 1, 1, 1, 1, 1]).buffer),
    other_image: new DataView(new Uint8Array([0]).buffer),
  });
  it("compares over the same steps where the other generation has them, the same occurrence of a word", () => {
    const history = createHistory(context(otherSteps(2)));
    history.drawPanel();
    expect(history.el.querySelector(".daam-iou")?.textContent).toBe("IoU of “a #2” at τ = 0.40: 1.000");
    expect(history.el.querySelector(".daam-compare-steps")?.textContent).toBe("both over the same steps (step 2 of 2 here)");
    const captions = [...history.el.querySelectorAll("figcaption")].map((c) => c.textContent);
    expect(captions).toEqual(["now: a dog a (seed 0), step 2 of 2", "then: a dog a (seed 3), step 2 of 2"]);
  });
  it("says so when the other generation lacks the steps shown, and shows all of its steps", () => {
    const history = createHistory(context({ ...otherSteps(1), other_step_maps: new DataView(new Uint8Array(12).buffer) }));
    history.drawPanel();
    expect(history.el.querySelector(".daam-compare-steps")?.textContent).toBe(
      "the other generation has 1 step: it is shown over all of them, not over step 2 of 2",
    );
    expect(history.el.querySelector(".daam-iou")?.textContent).toBe("IoU of “a #2” at τ = 0.40: 0.000");
  });
});
