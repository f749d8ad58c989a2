// @vitest-environment happy-dom
import { describe, expect, it, vi } from "vitest";
import { createChips } from "./chips";
import { createControls } from "./controls";
import { exportSize } from "./export";
import { context } from "./fixtures";
import { createGrid } from "./grid";
import { createHistory, matchWord } from "./history";
import { createPinned } from "./pinned";
import { createMain, legendLines, maskLine } from "./stage";
import { createStatus } from "./status";
import { createTimeline, massOf, positionOf, stepsAt } from "./timeline";

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
  it("says which scale the legend's top is on", () => {
    expect(legendLines("dog", "all 2 steps", "shared", 2, 4)).toEqual({
      title: "dog",
      detail: "Eq. 6: attention summed over layers, heads and all 2 steps; one scale for all words (the largest peak)",
      top: "4.00",
    });
    expect(maskLine("a #2", 0.5, 0.25)).toBe("mask of “a #2”: 50.0 % of the image at τ = 0.25");
  });
});

describe("chips", () => {
  it("numbers repeated words without changing their text, and marks and clears pins", () => {
    const ctx = context({ pinned: [2] });
    const chips = createChips(ctx);
    chips.build();
    const buttons = [...chips.el.querySelectorAll<HTMLButtonElement>(".daam-chip")];
    expect(buttons.map((b) => [b.textContent, b.dataset.occurrence])).toEqual([["a", "1"], ["dog", undefined], ["a", "2"]]);
    expect(buttons.map((b) => b.classList.contains("daam-pinned"))).toEqual([false, false, true]);
    const clear = chips.el.querySelector<HTMLButtonElement>(".daam-clear-pins")!;
    expect(clear.hidden).toBe(false);
    clear.click();
    expect(ctx.model.get("pinned")).toEqual([]);
  });
  it("pins a clicked word and shows it", () => {
    const ctx = context();
    const chips = createChips(ctx);
    chips.build();
    chips.el.querySelectorAll<HTMLButtonElement>(".daam-chip")[1].click();
    expect([ctx.model.get("pinned"), ctx.model.get("selected")]).toEqual([[1], 1]);
  });
});

describe("controls", () => {
  it("set the traits they show", () => {
    const ctx = context();
    const controls = createControls(ctx);
    controls.draw();
    const scale = controls.el.querySelector<HTMLSelectElement>(".daam-scale")!;
    scale.value = "shared";
    scale.dispatchEvent(new Event("change"));
    expect(ctx.model.get("scale")).toBe("shared");
    const grid = controls.el.querySelector<HTMLInputElement>(".daam-grid-toggle")!;
    grid.checked = false;
    grid.dispatchEvent(new Event("change"));
    expect(ctx.model.get("grid")).toBe(false);
  });
  it("disable opacity in the mask view, which draws no colours", () => {
    const ctx = context({ view: "mask" });
    const controls = createControls(ctx);
    controls.draw();
    expect(controls.el.querySelector<HTMLInputElement>(".daam-opacity")!.disabled).toBe(true);
  });
});

describe("timeline", () => {
  it("maps scrubber positions to steps and back", () => {
    expect(stepsAt("single", 3)).toEqual([3, 4]);
    expect(stepsAt("cumulative", 3)).toEqual([0, 4]);
    expect(positionOf([0, 0], 30)).toBe(29);
    expect(positionOf([3, 4], 30)).toBe(3);
  });
  it("reads a word's mass per step and resolution", () => {
    const mass = new Float32Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(massOf(mass, 2, 2, 3, 1)).toEqual([[2, 5], [8, 11]]);
  });
  it("sets the steps from the scrubber, and the last step alone is all steps only with one step", () => {
    const ctx = context();
    const timeline = createTimeline(ctx);
    timeline.draw();
    const scrubber = timeline.el.querySelector<HTMLInputElement>(".daam-scrubber")!;
    scrubber.value = "0";
    scrubber.dispatchEvent(new Event("input"));
    expect(ctx.model.get("steps")).toEqual([0, 1]);
    ctx.model.set("step_mode", "cumulative");
    scrubber.value = "1";
    scrubber.dispatchEvent(new Event("input"));
    expect(ctx.model.get("steps")).toEqual([0, 0]);
  });
  it("plays every step in order, then stops", () => {
    vi.useFakeTimers();
    const ctx = context({ steps: [0, 1] });
    const timeline = createTimeline(ctx);
    timeline.draw();
    const seen: unknown[] = [];
    ctx.model.on("change:steps", () => seen.push(ctx.model.get("steps")));
    timeline.el.querySelector<HTMLButtonElement>(".daam-play")!.click();
    vi.advanceTimersByTime(1000);
    expect(seen).toEqual([[1, 2]]);
    expect(ctx.view.playing).toBe(false);
    vi.useRealTimers();
  });
  it("is hidden for maps without a per-step record", () => {
    const timeline = createTimeline(context({ num_steps: 0, step_maps: null }));
    timeline.draw();
    expect(timeline.el.hidden).toBe(true);
  });
});

describe("grid", () => {
  it("draws one panel per word, and a click selects it", () => {
    const ctx = context();
    const grid = createGrid(ctx);
    grid.draw();
    const tiles = grid.el.querySelectorAll<HTMLElement>(".daam-grid-tile");
    expect([...tiles].map((t) => t.textContent)).toEqual(["a #1", "dog", "a #2"]);
    tiles[2].click();
    expect(ctx.model.get("selected")).toBe(2);
  });
});

describe("pinned words", () => {
  it("show side by side with their mask areas, or as one argmax map over a grey image", () => {
    const ctx = context({ pinned: [0, 1] });
    const pinned = createPinned(ctx);
    pinned.draw();
    expect([...pinned.el.querySelectorAll("figcaption")].map((c) => c.textContent)).toEqual(["a #1 · 25.0 %", "dog · 25.0 %"]);
    ctx.model.set("compare", "argmax");
    pinned.draw();
    expect(pinned.el.querySelector(".daam-argmax img")?.classList.contains("daam-grey")).toBe(true);
  });
});

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

describe("status", () => {
  it("sends the prompt and seed to the kernel and shows progress while generating", () => {
    const ctx = context({ status: "generating", progress: [3, 10] });
    const status = createStatus(ctx, () => {});
    status.draw();
    const [row, progress] = status.top;
    (row.querySelector(".daam-prompt") as HTMLInputElement).value = "a cat";
    (row.querySelector(".daam-generate-button") as HTMLButtonElement).disabled = false;
    (row.querySelector(".daam-generate-button") as HTMLButtonElement).click();
    expect(ctx.sent).toEqual([{ type: "generate", prompt: "a cat", seed: 0 }]);
    expect(progress.hidden).toBe(false);
    expect(progress.textContent).toMatch(/^step 3 of 10/);
  });
});

it("exports the overlay at least 512 px wide", () => {
  expect(exportSize([64, 64])).toEqual([512, 512]);
  expect(exportSize([768, 1024])).toEqual([768, 1024]);
  expect(exportSize([100, 200])).toEqual([256, 512]);
});
