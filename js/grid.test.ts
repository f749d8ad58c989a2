// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { context } from "./fixtures";
import { createGrid } from "./grid";

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
  it("has no panel for a word the model did not see", () => {
    const spans = [
      { text: "a", start: 0, end: 1, word: 0, available: true },
      { text: "dog", start: 2, end: 5, word: 1, available: true },
      { text: "a", start: 6, end: 7, word: 2, available: false },
    ];
    const grid = createGrid(context({ spans }));
    grid.draw();
    expect([...grid.el.querySelectorAll(".daam-grid-tile")].map((t) => t.textContent)).toEqual(["a #1", "dog"]);
  });
  it("opens a panel with Enter or Space, as a button does, and says which is open", () => {
    const ctx = context();
    const grid = createGrid(ctx);
    grid.draw();
    const tiles = grid.el.querySelectorAll<HTMLElement>(".daam-grid-tile");
    expect(tiles[1].getAttribute("role")).toBe("button");
    tiles[1].dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true }));
    expect(ctx.model.get("selected")).toBe(1);
    tiles[0].dispatchEvent(new KeyboardEvent("keydown", { key: " ", bubbles: true }));
    expect(ctx.model.get("selected")).toBe(0);
    grid.mark();
    expect([...tiles].map((t) => t.getAttribute("aria-pressed"))).toEqual(["true", "false", "false"]);
  });
});

it("gives each word's panel its attention per step, when the steps were recorded", () => {
  const grid = createGrid(context());
  grid.draw();
  expect(grid.el.querySelectorAll(".daam-grid-mass:not([hidden])").length).toBe(3);
  const saved = createGrid(context({ num_steps: 0, step_mass: null, step_maps: null }));
  saved.draw();
  expect(saved.el.querySelectorAll(".daam-grid-mass:not([hidden])").length).toBe(0);
});
