/** Every word's map at a glance, as small multiples (the paper's figures), each with its attention per
 * step; a click opens the word. */
import type { Context } from "./context";
import { h, paint, stage } from "./dom";
import { overlay } from "./overlays";
import { drawMass, massSeries } from "./timeline";

export const TILE = 128;

export function createGrid(ctx: Context) {
  const { model } = ctx;
  const el = h("div", { class: "daam-grid", role: "group", "aria-label": "every word's map: press one to open it" });

  function draw(): void {
    const shown = ctx.shown();
    const [mh, mw] = shown.size;
    el.hidden = !model.get("grid") || shown.maps.length === 0;
    if (el.hidden) return;
    const settings = { view: model.get("view"), tau: model.get("tau"), opacity: model.get("opacity"), colormap: model.get("colormap") };
    const seen = new Set(model.get("spans").flatMap((s) => (s.word !== null && s.available ? [s.word] : [])));
    el.replaceChildren(
      ...shown.maps.flatMap((map, k) => {
        if (!seen.has(k)) return []; // cut off by the text encoder: no map to show (chips.ts says so)
        const tile = stage(TILE, model.get("image_size"), shown.size);
        tile.img.src = ctx.imageUrl();
        tile.img.hidden = !ctx.imageUrl();
        paint(tile.canvas, overlay(map, mh, mw, settings));
        const spark = h("canvas", { class: "daam-grid-mass", title: "attention per step, by resolution" });
        spark.width = TILE;
        spark.height = 18;
        const series = massSeries(ctx, k);
        spark.hidden = series === null;
        if (series) drawMass(spark, series, model.get("steps"));
        const figure = h("figure", { class: "daam-figure daam-grid-tile", role: "button", tabindex: "0" }, [
          tile.box,
          spark,
          h("figcaption", {}, [ctx.wordName(k)]),
        ]);
        figure.dataset.word = String(k);
        figure.setAttribute("aria-label", `map of “${ctx.wordName(k)}”, ${shown.steps}`);
        figure.classList.toggle("daam-selected", k === ctx.active());
        figure.setAttribute("aria-pressed", String(k === ctx.active()));
        return [figure];
      }),
    );
  }

  /** Mark the active word's panel: hovering redraws no panel. */
  function mark(): void {
    const active = ctx.active();
    for (const tile of el.querySelectorAll<HTMLElement>(".daam-grid-tile")) {
      tile.classList.toggle("daam-selected", Number(tile.dataset.word) === active);
      tile.setAttribute("aria-pressed", String(Number(tile.dataset.word) === active));
    }
  }

  function open(event: Event): void {
    const tile = (event.target as HTMLElement).closest?.(".daam-grid-tile") as HTMLElement | null;
    if (!tile) return;
    ctx.set("selected", Number(tile.dataset.word));
  }
  el.addEventListener("click", open);
  el.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" && event.key !== " ") return;
    event.preventDefault(); // Space would scroll the page
    event.stopPropagation(); // Jupyter's command keys stay out of the widget
    open(event);
  });
  return { el, draw, mark };
}
