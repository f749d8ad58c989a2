// @vitest-environment happy-dom
import { describe, expect, it, vi } from "vitest";
import { context } from "./fixtures";
import { THUMB, createTimeline, massOf, massSeries, positionOf, stepAt, stepX, stepsAt } from "./timeline";

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
  it("centres step t's bar where a range input centres its thumb at t, and finds the step under a click", () => {
    // a range input W wide with a thumb T wide puts value t of 0..n-1 at T/2 + t/(n-1) * (W - T)
    const W = 360;
    for (const t of [0, 7, 29]) {
      const thumb = THUMB / 2 + (t / 29) * (W - THUMB);
      expect(stepX(t, 30, W, THUMB / 2)).toBeCloseTo(thumb, 9);
      expect(stepAt(thumb + 2, 30, W, THUMB / 2)).toBe(t);
    }
    expect(stepAt(-50, 30, W, THUMB / 2)).toBe(0);
    expect(stepAt(W + 50, 30, W, THUMB / 2)).toBe(29);
  });
  it("goes to the step whose bar is clicked", () => {
    const ctx = context({ selected: 1 });
    const timeline = createTimeline(ctx);
    timeline.draw();
    const chart = timeline.el.querySelector<HTMLCanvasElement>(".daam-mass-chart")!;
    chart.getBoundingClientRect = () => ({ left: 100, width: 200 }) as DOMRect;
    chart.dispatchEvent(new MouseEvent("click", { clientX: 100 + 200 - THUMB / 2 }));
    expect(ctx.model.get("steps")).toEqual([1, 2]);
    chart.dispatchEvent(new MouseEvent("click", { clientX: 100 + THUMB / 2 }));
    expect(ctx.model.get("steps")).toEqual([0, 1]);
    expect(timeline.el.querySelector(".daam-axis")!.textContent).toBe("12");
  });
  it("is hidden for maps without a per-step record", () => {
    const timeline = createTimeline(context({ num_steps: 0, step_maps: null }));
    timeline.draw();
    expect(timeline.el.hidden).toBe(true);
  });
});

it("reads each word's series from the traits: (steps, resolutions, words)", () => {
  // the fixture's step_mass is 1..12 over 2 steps, 2 resolutions, 3 words
  expect(massSeries(context(), 2)).toEqual([[3, 6], [9, 12]]);
  expect(massSeries(context({ step_mass: null }), 0)).toBeNull();
});
