/** The main view: the image with the active word's overlay, and its legend (what the colours mean); while
 * the image is generated and no word is shown, where each word is placed so far. */
import type { Context } from "./context";
import { colormap, formatValue } from "./colormaps";
import { h, paint, displayWidth, stage } from "./dom";
import { area, argmax, threshold } from "./masks";
import { argmaxOverlay, overlay } from "./overlays";
import { paletteColor } from "./palette";
import { type Span, seenWords } from "./words";

/** The legend's lines for a word: what the scale is, and where its top comes from. */
export function legendLines(
  name: string,
  steps: string,
  scale: "word" | "shared",
  peak: number,
  sharedPeak: number,
  peakOf = "this word's own peak",
): { title: string; detail: string; top: string } {
  const top = scale === "shared" ? sharedPeak : peak;
  return {
    title: name,
    detail:
      `Eq. 6: attention summed over layers, heads and ${steps}; ` +
      (scale === "shared" ? "one scale for all words (the largest peak)" : `colours scaled to ${peakOf}`),
    top: formatValue(top),
  };
}

export function maskLine(name: string, fraction: number, tau: number): string {
  return `mask of “${name}”: ${(100 * fraction).toFixed(1)} % of the image at τ = ${tau.toFixed(2)}`;
}

/** Each pixel's word with the most attention (at least τ of that word's peak; -1: none), among the words
 * the model saw; null without maps. */
export function placedWords(maps: Uint8Array[], spans: Span[], tau: number): Int16Array | null {
  const seen = new Set(seenWords(spans));
  return maps.length ? argmax(maps.map((m, k) => (seen.has(k) ? m : new Uint8Array(m.length))), tau) : null;
}

/** What the overlay shows, for a screen reader: a word's map or mask, where each word is placed so far
 * (while generating), or nothing. */
function describeOverlay(canvas: HTMLCanvasElement, label: string | null): void {
  if (label === null) {
    canvas.removeAttribute("role");
    canvas.removeAttribute("aria-label");
    return;
  }
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", label);
}

export function createMain(ctx: Context) {
  const { model } = ctx;
  let current = stage(displayWidth(1), [1, 1], [1, 1]);
  const waiting = h("div", { class: "daam-waiting" }, ["generating: maps so far"]);
  const stageBox = h("div", { class: "daam-stage-box" }, [current.box, waiting]);
  const title = h("div", { class: "daam-legend-title" });
  const detail = h("div", { class: "daam-legend-detail" });
  const colorbar = h("canvas", { class: "daam-colorbar" });
  colorbar.width = 256;
  colorbar.height = 1;
  const hi = h("span", { class: "daam-legend-hi" });
  const bar = h("div", { class: "daam-legend-bar" }, [h("span", {}, ["0"]), colorbar, hi]);
  const legend = h("div", { class: "daam-legend" }, [title, detail, bar]);
  const areaText = h("div", { class: "daam-area" });
  const hint = h("div", { class: "daam-message daam-hint" });
  // The legend and the hint share one place, as tall as a legend whose lines wrap in a narrow output area
  // (styles.ts): showing one for the other moves nothing (there the side panel sits above the words).
  const info = h("div", { class: "daam-info" }, [legend, areaText]);
  const side = h("div", { class: "daam-side" }, [info, hint]);
  const el = h("div", { class: "daam-main" }, [stageBox, side]);

  function drawImage(): void {
    const shown = ctx.shown();
    const fresh = stage(displayWidth(model.get("image_size")[1]), model.get("image_size"), shown.size);
    fresh.img.src = ctx.imageUrl();
    fresh.img.hidden = !ctx.imageUrl();
    fresh.img.alt = `image generated for the prompt: ${model.get("prompt")}`;
    current.box.replaceWith(fresh.box);
    current = fresh;
  }

  /** A video's frame shown now, in the stage as it is. */
  function showFrame(): void {
    current.img.src = ctx.imageUrl();
    current.img.hidden = !ctx.imageUrl();
  }

  function draw(): void {
    const shown = ctx.shown();
    const [mh, mw] = shown.size;
    if (current.canvas.width !== Math.max(mw, 1) || current.canvas.height !== Math.max(mh, 1)) drawImage();
    const word = ctx.active();
    const map = word !== null ? shown.maps[word] : undefined;
    const settings = { view: model.get("view"), tau: model.get("tau"), opacity: model.get("opacity"), colormap: model.get("colormap") };
    const live = model.get("status") === "generating";
    const placed = !map && live && !ctx.imageUrl() ? placedWords(shown.maps, model.get("spans"), model.get("tau")) : null;
    if (map) paint(current.canvas, overlay(map, mh, mw, settings));
    else paint(current.canvas, placed ? argmaxOverlay(placed, 0.85) : null);
    const what = model.get("view") === "mask" ? "Eq. 7 mask" : "DAAM map";
    describeOverlay(
      current.canvas,
      word !== null && map
        ? `${what} of “${ctx.wordName(word)}” over the image, ${shown.steps}`
        : placed
          ? `where each word is placed so far, ${shown.steps}`
          : null,
    );
    waiting.hidden = !live;
    waiting.textContent = placed ? "generating: each pixel in the colour of its strongest word" : "generating: maps so far";
    drawHint(placed !== null);
    hint.classList.toggle("daam-off", !!map);
    info.classList.toggle("daam-off", !map);
    if (!map || word === null) return;
    const name = ctx.wordName(word);
    const tau = model.get("tau");
    areaText.textContent = maskLine(name, area(threshold(map, tau)), tau);
    const lines = legendLines(name, shown.steps, model.get("scale"), shown.peaks[word] ?? 0, Math.max(0, ...shown.peaks), shown.peakOf);
    title.textContent = model.get("view") === "mask" ? `${name}: Eq. 7 mask` : lines.title;
    detail.textContent = lines.detail;
    bar.hidden = model.get("view") === "mask";
    hi.textContent = lines.top;
    const lut = colormap(model.get("colormap"));
    const pixels = new Uint8ClampedArray(256 * 4);
    for (let v = 0; v < 256; v++) pixels.set([lut[v * 3], lut[v * 3 + 1], lut[v * 3 + 2], 255], v * 4);
    paint(colorbar, pixels);
  }

  function drawHint(placed: boolean): void {
    if (!placed) {
      hint.replaceChildren("Hover a word to see its map; click to pin it.");
      return;
    }
    const words = seenWords(model.get("spans"));
    hint.replaceChildren(
      "While the image is generated: each word's colour. Hover a word for its map.",
      ...words.map((k) => {
        const swatch = h("span", { class: "daam-swatch" });
        swatch.style.background = paletteColor(k);
        return h("span", { class: "daam-key" }, [swatch, ctx.wordName(k)]);
      }),
    );
  }

  return {
    el,
    draw,
    drawImage,
    showFrame,
    image: () => current.img,
    overlay: () => current.canvas,
  };
}
