/**
 * The generations of this widget as a strip of thumbnails; one of them shown beside the current image
 * with the same word's map over the same steps, and the IoU of the two Eq. 7 masks.
 */
import { type Context, stepRecord, stepsLabel } from "./context";
import { bytes, decodeMaps } from "./codecs";
import { h, paint, stage } from "./dom";
import { maskIou, resample, threshold } from "./masks";
import { overlay } from "./overlays";
import { mapsOverSteps } from "./step_sums";

export const SIDE = 256;

/** The index in `theirs` of the word `mine[k]`, the same occurrence of it (case-insensitive: the second
 * "a" is the other prompt's second "a"), or -1 where `theirs` has fewer. */
export function matchWord(mine: string[], k: number, theirs: string[]): number {
  const word = (mine[k] ?? "").toLowerCase();
  const occurrence = mine.slice(0, k).filter((w) => w.toLowerCase() === word).length;
  const matches = theirs.flatMap((w, j) => (w.toLowerCase() === word ? [j] : []));
  return matches[occurrence] ?? -1;
}

export function createHistory(ctx: Context) {
  const { model } = ctx;
  const strip = h("div", { class: "daam-history-strip", role: "list", "aria-label": "generations" });
  const panel = h("div", { class: "daam-history-compare" });
  const el = h("div", { class: "daam-history" }, [strip, panel]);
  const thumbnails: string[] = [];
  const compared: string[] = [];

  function drawStrip(): void {
    for (const url of thumbnails.splice(0)) URL.revokeObjectURL(url);
    const history = model.get("history") ?? [];
    const all = bytes(model.get("history_thumbnails"));
    strip.hidden = history.length < 2 && model.get("compare_to") < 0;
    const chosen = model.get("compare_to");
    strip.replaceChildren(
      h("span", { class: "daam-message" }, [ctx.hasKernel() ? "history (click one to compare):" : "history:"]),
      ...history.map((entry, i) => {
        const [at, length] = entry.thumbnail;
        const url = URL.createObjectURL(new Blob([all.slice(at, at + length) as BlobPart], { type: "image/png" }));
        thumbnails.push(url);
        const button = h("button", { class: "daam-history-item", type: "button", title: `${entry.prompt} (seed ${entry.seed})` }, [
          h("img", { src: url, alt: entry.prompt }),
        ]);
        button.dataset.index = String(i);
        button.classList.toggle("daam-selected", i === chosen);
        button.disabled = !ctx.hasKernel();
        return button;
      }),
    );
  }

  function drawPanel(): void {
    for (const url of compared.splice(0)) URL.revokeObjectURL(url);
    const other = model.get("other") ?? {};
    const otherData = model.get("other_maps");
    if (model.get("compare_to") < 0 || !other.map_size || !otherData) {
      panel.replaceChildren();
      return;
    }
    const shown = ctx.shown();
    const [oh, ow] = other.map_size;
    const steps = model.get("steps");
    const ranged = !(steps[0] === 0 && steps[1] === 0);
    const theirSteps = other.num_steps ?? 0;
    const sameSteps = ranged ? mapsOverSteps(stepRecord(model, "other"), steps[0], steps[1], [oh, ow]) : null;
    const otherMaps = sameSteps?.maps ?? decodeMaps(otherData, oh, ow);
    const theirLabel = sameSteps ? stepsLabel(steps, theirSteps) : stepsLabel([0, 0], theirSteps);
    const word = ctx.active();
    const words = model.get("words");
    const name = word !== null ? ctx.wordName(word) : "";
    const j = word !== null ? matchWord(words, word, other.words ?? []) : -1;
    const settings = { view: model.get("view"), tau: model.get("tau"), opacity: model.get("opacity"), colormap: model.get("colormap") };
    const here = stage(SIDE, model.get("image_size"), shown.size);
    here.img.src = ctx.imageUrl();
    if (word !== null && shown.maps[word]) paint(here.canvas, overlay(shown.maps[word], shown.size[0], shown.size[1], settings));
    const there = stage(SIDE, model.get("image_size"), [oh, ow]);
    const otherUrl = URL.createObjectURL(new Blob([bytes(model.get("other_image")) as BlobPart], { type: "image/png" }));
    compared.push(otherUrl);
    there.img.src = otherUrl;
    if (j >= 0) paint(there.canvas, overlay(otherMaps[j], oh, ow, settings));
    let verdict = "hover or select a word to compare its map in both";
    if (word !== null && j < 0) verdict = `the other prompt has no “${name}”`;
    if (word !== null && j >= 0 && shown.maps[word]) {
      const [mh, mw] = shown.size;
      const tau = model.get("tau");
      const a = threshold(resample(shown.maps[word], mh, mw, oh, ow), tau);
      const b = threshold(otherMaps[j], tau);
      verdict = `IoU of “${name}” at τ = ${tau.toFixed(2)}: ${maskIou(a, b).toFixed(3)}`;
    }
    const stepsNote = h("span", { class: "daam-message daam-compare-steps" }, [
      !ranged
        ? "both over all their steps"
        : sameSteps
          ? `both over the same steps (${stepsLabel(steps, model.get("num_steps"))} here)`
          : `the other generation has ${theirSteps} step${theirSteps === 1 ? "" : "s"}: it is shown over all of them, not over ${shown.steps}`,
    ]);
    const close = h("button", { class: "daam-history-close", type: "button" }, ["close"]);
    close.addEventListener("click", () => ctx.set("compare_to", -1));
    close.hidden = !ctx.hasKernel();
    panel.replaceChildren(
      h("figure", { class: "daam-figure" }, [
        here.box,
        h("figcaption", {}, [`now: ${model.get("prompt")} (seed ${model.get("seed")}), ${shown.steps}`]),
      ]),
      h("figure", { class: "daam-figure" }, [
        there.box,
        h("figcaption", {}, [`then: ${other.prompt ?? ""} (seed ${other.seed ?? ""}), ${theirLabel}`]),
      ]),
      h("div", { class: "daam-history-verdict" }, [h("span", { class: "daam-iou" }, [verdict]), stepsNote, close]),
    );
  }

  strip.addEventListener("click", (event) => {
    const item = (event.target as HTMLElement).closest?.(".daam-history-item") as HTMLButtonElement | null;
    if (!item || item.disabled) return;
    const i = Number(item.dataset.index);
    ctx.set("compare_to", model.get("compare_to") === i ? -1 : i);
    ctx.expectKernel();
  });

  return {
    el,
    drawStrip,
    drawPanel,
    dispose: () => {
      for (const url of [...thumbnails.splice(0), ...compared.splice(0)]) URL.revokeObjectURL(url);
    },
  };
}
