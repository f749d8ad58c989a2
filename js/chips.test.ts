// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { context } from "./fixtures";
import { createChips } from "./chips";

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
  it("are buttons whose pressed state is the pin, not list items", () => {
    const ctx = context({ pinned: [1] });
    const chips = createChips(ctx);
    chips.build();
    const buttons = [...chips.el.querySelectorAll<HTMLButtonElement>(".daam-chip")];
    expect(chips.el.querySelectorAll("[role=listitem], [role=list]").length).toBe(0);
    expect(buttons.map((b) => [b.tagName, b.getAttribute("aria-pressed")])).toEqual([
      ["BUTTON", "false"],
      ["BUTTON", "true"],
      ["BUTTON", "false"],
    ]);
    expect(buttons[2].getAttribute("aria-label")).toBe("a, occurrence 2");
  });
  it("says in one line how many words the model did not see", () => {
    const spans = [
      { text: "a", start: 0, end: 1, word: 0, available: true },
      { text: "dog", start: 2, end: 5, word: 1, available: false },
      { text: "a", start: 6, end: 7, word: 2, available: false },
    ];
    const chips = createChips(context({ spans }));
    chips.build();
    const line = chips.el.querySelector<HTMLElement>(".daam-cut")!;
    expect(line.hidden).toBe(false);
    expect(line.textContent).toBe(
      "2 of the prompt's 3 words come after the text encoder's window and were not seen by the model: " +
        "struck through, with no map.",
    );
    const all = createChips(context());
    all.build();
    expect(all.el.querySelector<HTMLElement>(".daam-cut")!.hidden).toBe(true);
  });
  it("pins a clicked word and shows it", () => {
    const ctx = context();
    const chips = createChips(ctx);
    chips.build();
    chips.el.querySelectorAll<HTMLButtonElement>(".daam-chip")[1].click();
    expect([ctx.model.get("pinned"), ctx.model.get("selected")]).toEqual([[1], 1]);
  });
});
