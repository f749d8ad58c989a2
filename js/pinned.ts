/** Pinned words compared: side by side, or one argmax map in the pins' colours over a grey image. */
import type { Context } from "./context";
import { h, paint, displayWidth, stage } from "./dom";
import { area, argmax, threshold } from "./masks";
import { argmaxOverlay, overlay } from "./overlays";
import { paletteColor } from "./palette";

export const SMALL = 192;

export function createPinned(ctx: Context) {
  const { model } = ctx;
  const el = h("div", { class: "daam-compare" });

  function swatch(i: number): HTMLSpanElement {
    const s = h("span", { class: "daam-swatch" });
    s.style.background = paletteColor(i);
    return s;
  }

  function draw(): void {
    const shown = ctx.shown();
    const pinned = model.get("pinned").filter((k) => shown.maps[k]);
    if (pinned.length < 2) {
      el.replaceChildren();
      return;
    }
    const [mh, mw] = shown.size;
    if (model.get("compare") === "argmax") {
      const fig = stage(displayWidth(model.get("image_size")[1]), model.get("image_size"), shown.size);
      fig.img.src = ctx.imageUrl();
      fig.img.classList.add("daam-grey");
      paint(fig.canvas, argmaxOverlay(argmax(pinned.map((k) => shown.maps[k]), model.get("tau")), Math.max(0.75, model.get("opacity"))));
      const key = pinned.map((k, i) => h("span", {}, [swatch(i), ctx.wordName(k), " "]));
      el.replaceChildren(h("figure", { class: "daam-figure daam-argmax" }, [fig.box, h("figcaption", {}, key)]));
      return;
    }
    const settings = { view: model.get("view"), tau: model.get("tau"), opacity: model.get("opacity"), colormap: model.get("colormap") };
    el.replaceChildren(
      ...pinned.map((k, i) => {
        const fig = stage(SMALL, model.get("image_size"), shown.size);
        fig.img.src = ctx.imageUrl();
        paint(fig.canvas, overlay(shown.maps[k], mh, mw, settings));
        const pct = (100 * area(threshold(shown.maps[k], model.get("tau")))).toFixed(1);
        return h("figure", { class: "daam-figure daam-pinned-figure" }, [
          fig.box,
          h("figcaption", {}, [swatch(i), ctx.wordName(k), ` · ${pct} %`]),
        ]);
      }),
    );
  }
  return { el, draw };
}
