/**
 * The view's settings: view, τ, opacity, colours, scale, pinned-word comparison, layers, the grid, and which
 * maps (DAAM, renormalised, concept maps of the concepts typed).
 */
import type { Context } from "./context";
import type { ColormapName } from "./colormaps";
import { h, options } from "./dom";
import type { View } from "./overlays";

export function createControls(ctx: Context) {
  const { model } = ctx;
  const viewSelect = h("select", { class: "daam-view", "aria-label": "view" });
  options(viewSelect, ["heat", "mask", "both"], ["heat map", "mask", "both"]);
  const tauSlider = h("input", { class: "daam-tau", type: "range", min: "0", max: "1", step: "0.01", "aria-label": "tau" });
  const tauText = h("span", { class: "daam-tau-value" });
  const opacitySlider = h("input", { class: "daam-opacity", type: "range", min: "0", max: "1", step: "0.05", "aria-label": "opacity" });
  const cmapSelect = h("select", { class: "daam-colormap", "aria-label": "colour map" });
  options(cmapSelect, ["inferno", "viridis", "jet"]);
  const scaleSelect = h("select", { class: "daam-scale", "aria-label": "colour scale" });
  options(scaleSelect, ["word", "shared"], ["each word's peak", "shared by all words"]);
  const compareSelect = h("select", { class: "daam-compare-mode", "aria-label": "compare pinned words" });
  options(compareSelect, ["side", "argmax"], ["side by side", "argmax"]);
  const resolutionSelect = h("select", { class: "daam-resolution", "aria-label": "resolution" });
  const gridBox = h("input", { class: "daam-grid-toggle", type: "checkbox", "aria-label": "all words" });
  const layerSelect = h("select", { class: "daam-layer", "aria-label": "layer" });
  const layerLabel = h("label", { title: "One attention layer's maps: which layer localises a word" }, ["layer", layerSelect]);
  const kindSelect = h("select", { class: "daam-map-kind", "aria-label": "maps" });
  const conceptsInput = h("input", {
    class: "daam-concepts",
    type: "text",
    placeholder: "cat, blue sky",
    "aria-label": "concepts",
    title: "Concepts, comma-separated: Enter generates again traced with them (the same image) and shows their maps",
  });
  const kindLabel = h("label", { title: "DAAM; DAAM with each pixel shared among the content words alone; concept maps" }, [
    "maps",
    kindSelect,
  ]);
  const conceptsLabel = h("label", {}, ["concepts", conceptsInput]);
  const note = h("span", { class: "daam-map-note" });
  const compareLabel = h("label", {}, ["pinned", compareSelect]);
  const resolutionLabel = h("label", {}, ["layers", resolutionSelect]);
  const el = h("div", { class: "daam-row daam-controls" }, [
    h("label", {}, ["view", viewSelect]),
    h("label", { title: "Eq. 7: a pixel is in a word's mask where its map is at least τ times the map's maximum" }, [
      "τ",
      tauSlider,
      tauText,
    ]),
    h("label", {}, ["opacity", opacitySlider]),
    h("label", {}, ["colours", cmapSelect]),
    h("label", {}, ["scale", scaleSelect]),
    compareLabel,
    resolutionLabel,
    layerLabel,
    h("label", {}, [gridBox, "all words"]),
    kindLabel,
    conceptsLabel,
    note,
  ]);

  function draw(): void {
    viewSelect.value = model.get("view");
    tauSlider.value = String(model.get("tau"));
    tauText.textContent = model.get("tau").toFixed(2);
    opacitySlider.value = String(model.get("opacity"));
    opacitySlider.disabled = model.get("view") === "mask";
    opacitySlider.title = opacitySlider.disabled ? "the mask view draws no colours" : "";
    cmapSelect.value = model.get("colormap");
    scaleSelect.value = model.get("scale");
    compareSelect.value = model.get("compare");
    compareLabel.hidden = model.get("pinned").length < 2;
    gridBox.checked = model.get("grid");
    const resolutions = model.get("resolutions");
    resolutionLabel.hidden = resolutions.length === 0 || !ctx.hasKernel();
    options(resolutionSelect, ["all", ...resolutions], ["all", ...resolutions.map((r) => `${r} only`)]);
    resolutionSelect.value = model.get("resolution");
    const layers = model.get("layer_names") ?? [];
    layerLabel.hidden = layers.length === 0 || !ctx.hasKernel();
    options(layerSelect, ["all", ...layers], ["all", ...layers]);
    layerSelect.value = model.get("layer") ?? "all";
    const concepts = Boolean(model.get("concepts_available"));
    const kinds = ["daam", "renormalized", ...(concepts ? ["concepts"] : [])];
    options(kindSelect, kinds, ["DAAM", "DAAM renormalised", "concept maps"].slice(0, kinds.length));
    kindSelect.value = model.get("map_kind") ?? "daam";
    kindLabel.hidden = !ctx.hasKernel() || (model.get("latent_frames") ?? 0) > 0; // a video's maps are DAAM's
    conceptsLabel.hidden = !concepts || !ctx.hasKernel();
    if (document.activeElement !== conceptsInput) conceptsInput.value = (model.get("concepts") ?? []).join(", ");
    note.textContent = model.get("map_note") ?? "";
  }

  tauSlider.addEventListener("input", () => ctx.set("tau", Number(tauSlider.value)));
  opacitySlider.addEventListener("input", () => ctx.set("opacity", Number(opacitySlider.value)));
  viewSelect.addEventListener("change", () => ctx.set("view", viewSelect.value as View));
  cmapSelect.addEventListener("change", () => ctx.set("colormap", cmapSelect.value as ColormapName));
  scaleSelect.addEventListener("change", () => ctx.set("scale", scaleSelect.value as "word" | "shared"));
  compareSelect.addEventListener("change", () => ctx.set("compare", compareSelect.value as "side" | "argmax"));
  gridBox.addEventListener("change", () => ctx.set("grid", gridBox.checked));
  resolutionSelect.addEventListener("change", () => {
    ctx.set("resolution", resolutionSelect.value);
    ctx.expectKernel();
  });
  layerSelect.addEventListener("change", () => {
    ctx.set("layer", layerSelect.value);
    ctx.expectKernel();
  });
  kindSelect.addEventListener("change", () => {
    ctx.set("map_kind", kindSelect.value as "daam" | "renormalized" | "concepts");
    ctx.expectKernel();
  });
  conceptsInput.addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    ctx.set("concepts", parseConcepts(conceptsInput.value));
    ctx.expectKernel();
  });
  return { el, draw };
}

/** The concepts typed in the box: comma-separated, trimmed, empty ones dropped. */
export function parseConcepts(text: string): string[] {
  return text
    .split(",")
    .map((c) => c.trim())
    .filter((c) => c.length > 0);
}
