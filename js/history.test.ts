// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { context } from "./fixtures";
import { createHistory, matchWord } from "./history";

describe("history", () => {
  it("matches words by text, first occurrence", () => {
    expect(matchWord(["A", "dog", "a"], "a")).toBe(0);
    expect(matchWord(["cat"], "dog")).toBe(-1);
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
  });
});
