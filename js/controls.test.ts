// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { context } from "./fixtures";
import { createControls } from "./controls";

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
