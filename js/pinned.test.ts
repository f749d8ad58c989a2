// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { context } from "./fixtures";
import { createPinned } from "./pinned";

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
