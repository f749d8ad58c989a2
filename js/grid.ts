/** Every word's map at a glance, as small multiples (the paper's figures), each with its attention per
 * step; a click opens the word. */
import type { Context } from "./context";
import { h, paint, stage } from "./dom";
import { overlay } from "./overlays";
import { shrink } from "./resize";
import { seenWords } from "./words";
import { drawMass, massSeries } from "./timeline";

export const TILE = 128;

export function createGrid(ctx: Context) {
  const { model } = ctx;
  const el = h("div", { class: "daam-grid", role: "group", "aria-label": "every word's map: press one to open it" });

  type Tile = { word: number; canvas: HTMLCanvasElement; spark: HTMLCanvasElement; figure: HTMLElement };
  let tiles: Tile[] = [];
  let layout = "";

  /** The panels, made again only when the words, the image or the maps' size change (not at each step). */
  function build(size: [number, number], seen: Set<number>, words: number): void {
    const key = JSON.stringify([[...seen], words, size, model.get("image_size"), ctx.imageUrl(), model.get("spans")]);
    if (key === layout) return;
    layout = key;
    tiles = [];
    for (let k = 0; k < words; k++) {
      if (!seen.has(k)) continue; // cut off by the text encoder: no map to show (chips.ts says so)
      const tile = stage(TILE, model.get("image_size"), size);
      tile.img.src = ctx.imageUrl();
      tile.img.hidden = !ctx.imageUrl();
      const spark = h("canvas", { class: "daam-grid-mass", title: "attention per step, by resolution" });
      spark.width = TILE;
      spark.height = 18;
      const figure = h("figure", { class: "daam-figure daam-grid-tile", role: "button", tabindex: "0" }, [
        tile.box,
        spark,
        h("figcaption", {}, [ctx.wordName(k)]),
      ]);
      figure.dataset.word = String(k);
      tiles.push({ word: k, canvas: tile.canvas, spark, figure });
    }
    el.replaceChildren(...tiles.map((t) => t.figure));
  }

  function draw(): void {
    const shown = ctx.shown();
    const [mh, mw] = shown.size;
    el.hidden = !model.get("grid") || shown.maps.length === 0;
    if (el.hidden) return;
    const scale = Math.min(1, TILE / Math.max(mh, mw, 1)); // drawn at the size shown: fewer pixels to colour
    const [th, tw] = [Math.max(1, Math.round(mh * scale)), Math.max(1, Math.round(mw * scale))];
    const seen = new Set(seenWords(model.get("spans")));
    build([th, tw], seen, shown.maps.length);
    const settings = { view: model.get("view"), tau: model.get("tau"), opacity: model.get("opacity"), colormap: model.get("colormap") };
    for (const { word, canvas, spark, figure } of tiles) {
      paint(canvas, overlay(shrink(shown.maps[word], mh, mw, th, tw), th, tw, settings));
      const series = massSeries(ctx, word);
      spark.hidden = series === null;
      if (series) drawMass(spark, series, model.get("steps"));
      figure.setAttribute("aria-label", `map of “${ctx.wordName(word)}”, ${shown.steps}`);
    }
    mark();
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
