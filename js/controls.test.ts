// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { context } from "./fixtures";
import { createControls, parseConcepts } from "./controls";

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
  it("offer concept maps only where the family has them, and send the concepts typed", () => {
    const unet = createControls(context());
    unet.draw();
    const kinds = (c: ReturnType<typeof createControls>) =>
      [...c.el.querySelectorAll<HTMLOptionElement>(".daam-map-kind option")].map((o) => o.value);
    expect(kinds(unet)).toEqual(["daam", "renormalized"]);
    expect(unet.el.querySelector<HTMLInputElement>(".daam-concepts")!.closest("label")!.hidden).toBe(true);

    const ctx = context({ concepts_available: true, map_note: "each pixel shared among dog, hat alone" });
    const flux = createControls(ctx);
    flux.draw();
    expect(kinds(flux)).toEqual(["daam", "renormalized", "concepts"]);
    expect(flux.el.querySelector(".daam-map-note")!.textContent).toBe("each pixel shared among dog, hat alone");
    const input = flux.el.querySelector<HTMLInputElement>(".daam-concepts")!;
    input.value = " cat,  blue sky ,, ";
    input.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter" }));
    expect(ctx.model.get("concepts")).toEqual(["cat", "blue sky"]);
    const kind = flux.el.querySelector<HTMLSelectElement>(".daam-map-kind")!;
    kind.value = "renormalized";
    kind.dispatchEvent(new Event("change"));
    expect(ctx.model.get("map_kind")).toBe("renormalized");
  });
  it("parse comma-separated concepts", () => {
    expect(parseConcepts("cat")).toEqual(["cat"]);
    expect(parseConcepts(" , ")).toEqual([]);
  });
  it("choose one layer where the kernel has the layers", () => {
    const ctx = context({ layer_names: ["down.0", "up.1"] });
    const controls = createControls(ctx);
    controls.draw();
    const layer = controls.el.querySelector<HTMLSelectElement>(".daam-layer")!;
    expect([...layer.options].map((o) => o.value)).toEqual(["all", "down.0", "up.1"]);
    layer.value = "up.1";
    layer.dispatchEvent(new Event("change"));
    expect(ctx.model.get("layer")).toBe("up.1");
    const none = createControls(context());
    none.draw();
    expect(none.el.querySelector(".daam-layer")!.closest("label")!.hidden).toBe(true);
  });
});
