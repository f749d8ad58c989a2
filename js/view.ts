/**
 * The DOM of the widget: a pure function of the model's state, plus the pointer's hover (a transient
 * view state that never needs the kernel). Every change of a trait redraws what depends on it.
 */
import type { AnyModel } from "@anywidget/types";
import {
  type ColormapName,
  type Span,
  type View,
  argmax,
  argmaxOverlay,
  area,
  chips,
  colormap,
  decodeMaps,
  formatValue,
  overlay,
  paletteColor,
  threshold,
} from "./maps";
import { CSS } from "./styles";

export type DaamState = {
  prompt: string;
  spans: Span[];
  image: DataView | null;
  image_size: [number, number];
  maps: DataView | null;
  map_size: [number, number];
  peaks: number[];
  selected: number | null;
  pinned: number[];
  tau: number;
  view: View;
  opacity: number;
  colormap: ColormapName;
  compare: "side" | "argmax";
  resolution: string;
  resolutions: string[];
  steps: [number, number];
  num_steps: number;
  status: "idle" | "generating" | "ready" | "error";
  progress: [number, number];
  error: string;
  message: string;
  can_generate: boolean;
  seed: number;
  has_kernel?: boolean;
};

export type DaamModel = AnyModel<DaamState>;

function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<Record<string, string>> = {},
  children: (Node | string)[] = [],
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) if (value !== undefined) node.setAttribute(key, value);
  for (const child of children) node.append(child);
  return node;
}

function options(select: HTMLSelectElement, values: string[], labels?: string[]): void {
  select.replaceChildren(...values.map((v, i) => h("option", { value: v }, [labels ? labels[i] : v])));
}

function displayWidth(width: number): number {
  return Math.max(256, Math.min(512, width));
}

/** An <img> of the generated image with a canvas on top for the overlay, sized for display. */
function stage(width: number, imageSize: [number, number], mapSize: [number, number]) {
  const [H, W] = imageSize;
  const box = h("div", { class: "daam-stage" });
  box.style.width = `${width}px`;
  box.style.height = `${Math.round((width * H) / Math.max(W, 1))}px`;
  const img = h("img", { class: width >= 2 * W ? "daam-image daam-pixelated" : "daam-image", alt: "" });
  const canvas = h("canvas", { class: "daam-overlay" });
  canvas.width = mapSize[1];
  canvas.height = mapSize[0];
  box.append(img, canvas);
  return { box, img, canvas };
}

function paint(canvas: HTMLCanvasElement, rgba: Uint8ClampedArray | null): void {
  const ctx = canvas.getContext("2d");
  if (!ctx) return;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (rgba) ctx.putImageData(new ImageData(rgba as Uint8ClampedArray<ArrayBuffer>, canvas.width, canvas.height), 0, 0);
}

function download(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function render({ model, el }: { model: DaamModel; el: HTMLElement }): () => void {
  let hovered: number | null = null;
  let maps: Uint8Array[] = [];
  let imageUrl = "";

  const promptInput = h("input", { class: "daam-prompt", type: "text", "aria-label": "prompt" });
  const seedInput = h("input", { class: "daam-seed", type: "number", "aria-label": "seed", step: "1" });
  const generateButton = h("button", { class: "daam-generate-button", type: "button" }, ["Generate"]);
  const generateRow = h("div", { class: "daam-row daam-generate" }, [promptInput, "seed", seedInput, generateButton]);

  const progressBar = h("progress");
  const progressText = h("span", { class: "daam-progress-text" });
  const progressRow = h("div", { class: "daam-progress" }, [progressBar, progressText]);
  const errorBox = h("div", { class: "daam-error", role: "alert" });

  const main = h("div", { class: "daam-main" });
  const legendTitle = h("span", { class: "daam-legend-title" });
  const colorbar = h("canvas", { class: "daam-colorbar" });
  colorbar.width = 256;
  colorbar.height = 1;
  const legendLo = h("span", {}, ["0"]);
  const legendHi = h("span", { class: "daam-legend-hi" });
  const legend = h("div", { class: "daam-legend" }, [legendTitle, legendLo, colorbar, legendHi]);
  const areaText = h("div", { class: "daam-area" });
  const hint = h("div", { class: "daam-message" }, ["Hover a word to see its map; click to pin it."]);
  const side = h("div", { class: "daam-side" }, [legend, areaText, hint]);
  let main_ = stage(256, [1, 1], [1, 1]);
  main.append(main_.box, side);

  const words = h("div", { class: "daam-words", role: "list", "aria-label": "words of the prompt" });

  const viewSelect = h("select", { class: "daam-view", "aria-label": "view" });
  options(viewSelect, ["heat", "mask", "both"], ["heat map", "mask", "both"]);
  const tauSlider = h("input", { class: "daam-tau", type: "range", min: "0", max: "1", step: "0.01" });
  const tauText = h("span", { class: "daam-tau-value" });
  const opacitySlider = h("input", { class: "daam-opacity", type: "range", min: "0", max: "1", step: "0.05" });
  const cmapSelect = h("select", { class: "daam-colormap", "aria-label": "colour map" });
  options(cmapSelect, ["inferno", "viridis", "jet"]);
  const compareSelect = h("select", { class: "daam-compare-mode", "aria-label": "compare pinned words" });
  options(compareSelect, ["side", "argmax"], ["side by side", "argmax"]);
  const resolutionSelect = h("select", { class: "daam-resolution", "aria-label": "resolution" });
  const compareLabel = h("label", {}, ["pinned", compareSelect]);
  const resolutionLabel = h("label", {}, ["layers", resolutionSelect]);
  const stepFrom = h("input", { class: "daam-step-from", type: "number", min: "0", step: "1", "aria-label": "first step" });
  const stepTo = h("input", { class: "daam-step-to", type: "number", min: "1", step: "1", "aria-label": "last step" });
  const stepsTotal = h("span", { class: "daam-steps-total" });
  const stepsLabel = h("label", { class: "daam-steps" }, ["steps", stepFrom, "to", stepTo, stepsTotal]);
  const controls = h("div", { class: "daam-row daam-controls" }, [
    h("label", {}, ["view", viewSelect]),
    h("label", {}, ["τ", tauSlider, tauText]),
    h("label", {}, ["opacity", opacitySlider]),
    h("label", {}, ["colours", cmapSelect]),
    compareLabel,
    resolutionLabel,
    stepsLabel,
  ]);

  const compare = h("div", { class: "daam-compare" });
  const savePng = h("button", { class: "daam-save-png", type: "button" }, ["Save overlay PNG"]);
  const saveMaps = h("button", { class: "daam-save-maps", type: "button" }, ["Save maps file"]);
  const message = h("span", { class: "daam-message daam-status" });
  const actions = h("div", { class: "daam-row daam-actions" }, [savePng, saveMaps, message]);

  const root = h("div", { class: "daam" }, [
    h("style", {}, [CSS]),
    generateRow,
    progressRow,
    errorBox,
    main,
    words,
    controls,
    compare,
    actions,
  ]);
  el.replaceChildren(root);

  const hasKernel = () => model.get("has_kernel") !== false;
  const mapSize = () => model.get("map_size");
  const active = () => (hovered !== null ? hovered : model.get("selected"));
  const settings = () => ({
    view: model.get("view"),
    tau: model.get("tau"),
    opacity: model.get("opacity"),
    colormap: model.get("colormap"),
  });
  const set = <K extends keyof DaamState>(key: K, value: DaamState[K]) => {
    model.set(key, value);
    model.save_changes();
  };

  function drawImage(): void {
    if (imageUrl) URL.revokeObjectURL(imageUrl);
    const data = model.get("image");
    imageUrl = data && data.byteLength ? URL.createObjectURL(new Blob([data as BlobPart], { type: "image/png" })) : "";
    const fresh = stage(displayWidth(model.get("image_size")[1]), model.get("image_size"), mapSize());
    fresh.img.src = imageUrl;
    main_.box.replaceWith(fresh.box);
    main_ = fresh;
  }

  function drawLegend(word: number | null): void {
    legend.hidden = word === null || model.get("view") === "mask";
    if (word === null) return;
    legendTitle.textContent = model.get("spans").find((s) => s.word === word)?.text ?? "";
    const lut = colormap(model.get("colormap"));
    const bar = new Uint8ClampedArray(256 * 4);
    for (let v = 0; v < 256; v++) bar.set([lut[v * 3], lut[v * 3 + 1], lut[v * 3 + 2], 255], v * 4);
    paint(colorbar, bar);
    legendHi.textContent = formatValue(model.get("peaks")[word] ?? 0);
  }

  function drawMain(): void {
    const word = active();
    const [mh, mw] = mapSize();
    const map = word !== null ? maps[word] : undefined;
    paint(main_.canvas, map ? overlay(map, mh, mw, settings()) : null);
    drawLegend(map ? word : null);
    areaText.hidden = !map;
    hint.hidden = !!map;
    if (map) {
      const tau = model.get("tau");
      areaText.textContent = `mask area ${(100 * area(threshold(map, tau))).toFixed(1)} % at τ = ${tau.toFixed(2)}`;
    }
  }

  /** The chips are built once per prompt; pins and the selection only restyle them, so the chip under the
   * pointer stays the same element (replacing it would lose its pointerout, and the hover would stick). */
  function buildChips(): void {
    words.replaceChildren(
      ...chips(model.get("prompt"), model.get("spans")).map((chip) => {
        if (chip.kind === "space") return h("span", { class: "daam-space" }, [chip.text]);
        if (chip.kind === "punct") return h("span", { class: "daam-punct", role: "listitem" }, [chip.text]);
        const button = h("button", { class: "daam-chip", type: "button", role: "listitem" }, [chip.text]);
        button.dataset.word = String(chip.word);
        if (!chip.available || !maps[chip.word]) {
          button.disabled = true;
          button.title = "cut off by the text encoder's window: no map";
        }
        return button;
      }),
    );
    markChips();
  }

  function markChips(): void {
    const pinned = model.get("pinned");
    const selected = model.get("selected");
    for (const button of words.querySelectorAll<HTMLButtonElement>(".daam-chip")) {
      const word = Number(button.dataset.word);
      const pin = pinned.indexOf(word);
      button.classList.toggle("daam-pinned", pin >= 0);
      if (pin >= 0) button.style.setProperty("--daam-pin", paletteColor(pin));
      else button.style.removeProperty("--daam-pin");
      button.classList.toggle("daam-selected", word === selected);
    }
  }

  function drawCompare(): void {
    const pinned = model.get("pinned").filter((k) => maps[k]);
    compareLabel.hidden = pinned.length < 2;
    if (pinned.length < 2) {
      compare.replaceChildren();
      return;
    }
    const [mh, mw] = mapSize();
    const spans = model.get("spans");
    const name = (k: number) => spans.find((s) => s.word === k)?.text ?? String(k);
    const small = 160;
    if (model.get("compare") === "argmax") {
      const fig = stage(Math.max(small, displayWidth(model.get("image_size")[1]) / 1.5), model.get("image_size"), mapSize());
      fig.img.src = imageUrl;
      paint(fig.canvas, argmaxOverlay(argmax(pinned.map((k) => maps[k]), model.get("tau")), model.get("opacity")));
      const key = pinned.map((k, i) =>
        h("span", {}, [Object.assign(h("span", { class: "daam-swatch" }), { style: `background:${paletteColor(i)}` }), name(k), " "]),
      );
      compare.replaceChildren(h("figure", { class: "daam-figure daam-argmax" }, [fig.box, h("figcaption", {}, key)]));
      return;
    }
    compare.replaceChildren(
      ...pinned.map((k, i) => {
        const fig = stage(small, model.get("image_size"), mapSize());
        fig.img.src = imageUrl;
        paint(fig.canvas, overlay(maps[k], mh, mw, settings()));
        const pct = (100 * area(threshold(maps[k], model.get("tau")))).toFixed(1);
        const swatch = h("span", { class: "daam-swatch" });
        swatch.style.background = paletteColor(i);
        return h("figure", { class: "daam-figure daam-pinned-figure" }, [
          fig.box,
          h("figcaption", {}, [swatch, name(k), ` · ${pct} %`]),
        ]);
      }),
    );
  }

  function drawControls(): void {
    viewSelect.value = model.get("view");
    tauSlider.value = String(model.get("tau"));
    tauText.textContent = model.get("tau").toFixed(2);
    opacitySlider.value = String(model.get("opacity"));
    cmapSelect.value = model.get("colormap");
    compareSelect.value = model.get("compare");
    const resolutions = model.get("resolutions");
    resolutionLabel.hidden = resolutions.length === 0 || !hasKernel();
    options(resolutionSelect, ["all", ...resolutions], ["all", ...resolutions.map((r) => `${r} only`)]);
    resolutionSelect.value = model.get("resolution");
    const total = model.get("num_steps") ?? 0;
    stepsLabel.hidden = total === 0 || !hasKernel();
    const [from, to] = model.get("steps") ?? [0, 0];
    stepFrom.max = String(Math.max(total - 1, 0));
    stepTo.max = String(total);
    stepFrom.value = String(from);
    stepTo.value = String(from === 0 && to === 0 ? total : to);
    stepsTotal.textContent = `of ${total}`;
  }

  function drawStatus(): void {
    const kernel = hasKernel();
    generateRow.hidden = !(kernel && model.get("can_generate"));
    if (document.activeElement !== promptInput) promptInput.value = model.get("prompt");
    if (document.activeElement !== seedInput) seedInput.value = String(model.get("seed"));
    const generating = model.get("status") === "generating";
    generateButton.disabled = generating;
    progressRow.hidden = !generating;
    const [step, total] = model.get("progress");
    progressBar.max = Math.max(total, 1);
    progressBar.value = step;
    progressText.textContent = `step ${step} of ${total}`;
    errorBox.hidden = !model.get("error");
    errorBox.textContent = model.get("error");
    saveMaps.hidden = !kernel;
    message.textContent = model.get("message");
  }

  function loadMaps(): void {
    const [mh, mw] = mapSize();
    const data = model.get("maps");
    try {
      maps = data ? decodeMaps(data, mh, mw) : [];
    } catch (err) {
      maps = [];
      errorBox.hidden = false;
      errorBox.textContent = String(err);
    }
  }

  function savePngNow(): void {
    const [H, W] = model.get("image_size");
    const canvas = h("canvas");
    canvas.width = W;
    canvas.height = H;
    const ctx = canvas.getContext("2d");
    if (!ctx) return;
    if (main_.img.complete && main_.img.naturalWidth) ctx.drawImage(main_.img, 0, 0, W, H);
    ctx.drawImage(main_.canvas, 0, 0, W, H);
    const word = active();
    const text = word === null ? "image" : (model.get("spans").find((s) => s.word === word)?.text ?? "word");
    canvas.toBlob((blob) => blob && download(blob, `daam-${text.replace(/[^\w-]+/g, "_")}.png`), "image/png");
  }

  words.addEventListener("pointerover", (event) => onChipEnter(event));
  words.addEventListener("focusin", (event) => onChipEnter(event));
  words.addEventListener("pointerout", (event) => onChipLeave(event));
  words.addEventListener("focusout", (event) => onChipLeave(event));
  words.addEventListener("pointerleave", () => {
    if (hovered === null) return;
    hovered = null;
    drawMain();
  });
  function chipOf(event: Event): number | null {
    const target = (event.target as HTMLElement | null)?.closest?.(".daam-chip") as HTMLButtonElement | null;
    return target && !target.disabled ? Number(target.dataset.word) : null;
  }
  function onChipEnter(event: Event): void {
    const word = chipOf(event);
    if (word === null || word === hovered) return;
    hovered = word;
    drawMain();
  }
  function onChipLeave(event: Event): void {
    const next = (event as PointerEvent).relatedTarget as HTMLElement | null;
    if (chipOf(event) === null || (next && next.closest?.(".daam-chip") === (event.target as HTMLElement).closest(".daam-chip"))) return;
    hovered = null;
    drawMain();
  }
  words.addEventListener("click", (event) => {
    const word = chipOf(event);
    if (word === null) return;
    const pinned = model.get("pinned");
    const next = pinned.includes(word) ? pinned.filter((k) => k !== word) : [...pinned, word];
    model.set("pinned", next);
    model.set("selected", next.includes(word) ? word : next.length ? next[next.length - 1] : null);
    model.save_changes();
  });
  tauSlider.addEventListener("input", () => set("tau", Number(tauSlider.value)));
  opacitySlider.addEventListener("input", () => set("opacity", Number(opacitySlider.value)));
  viewSelect.addEventListener("change", () => set("view", viewSelect.value as View));
  cmapSelect.addEventListener("change", () => set("colormap", cmapSelect.value as ColormapName));
  compareSelect.addEventListener("change", () => set("compare", compareSelect.value as "side" | "argmax"));
  /** After asking the kernel for something, say so if nothing it owns changed within a few seconds (a
   * page exported by nbconvert keeps the widget's state but has no kernel to answer). */
  const KERNEL_OWNED = ["status", "message", "error", "progress", "maps"] as const;
  function expectKernel(): void {
    const before = KERNEL_OWNED.map((key) => model.get(key));
    setTimeout(() => {
      if (KERNEL_OWNED.every((key, i) => model.get(key) === before[i])) {
        message.textContent = "No answer from the kernel yet: it is busy, or this page has none (an export).";
      }
    }, 4000);
  }
  function askKernel(content: Record<string, unknown>): void {
    model.send(content);
    expectKernel();
  }
  resolutionSelect.addEventListener("change", () => {
    set("resolution", resolutionSelect.value);
    expectKernel();
  });
  const onSteps = () => {
    const total = model.get("num_steps");
    const from = Math.max(0, Math.min(total - 1, Math.round(Number(stepFrom.value))));
    const to = Math.max(from + 1, Math.min(total, Math.round(Number(stepTo.value))));
    const next: [number, number] = from === 0 && to === total ? [0, 0] : [from, to];
    const [a, b] = model.get("steps");
    if (next[0] !== a || next[1] !== b) {
      set("steps", next);
      expectKernel();
    }
    drawControls();
  };
  stepFrom.addEventListener("change", onSteps);
  stepTo.addEventListener("change", onSteps);
  generateButton.addEventListener("click", () =>
    askKernel({ type: "generate", prompt: promptInput.value, seed: Number(seedInput.value) }),
  );
  savePng.addEventListener("click", savePngNow);
  saveMaps.addEventListener("click", () => askKernel({ type: "save_maps" }));

  const redraw = () => {
    drawControls();
    buildChips();
    drawMain();
    drawCompare();
  };
  const onData = () => {
    loadMaps();
    drawImage();
    redraw();
    drawStatus();
  };
  const handlers: [string, () => void][] = [
    ["change:image", onData],
    ["change:maps", onData],
    ["change:spans", redraw],
    ["change:prompt", () => (buildChips(), drawStatus())],
    ["change:selected", () => (markChips(), drawMain())],
    ["change:pinned", () => (markChips(), drawCompare())],
    ["change:tau", () => (drawControls(), drawMain(), drawCompare())],
    ["change:view", () => (drawControls(), drawMain(), drawCompare())],
    ["change:opacity", () => (drawControls(), drawMain(), drawCompare())],
    ["change:colormap", () => (drawControls(), drawMain(), drawCompare())],
    ["change:compare", () => (drawControls(), drawCompare())],
    ["change:resolutions", drawControls],
    ["change:resolution", drawControls],
    ["change:steps", drawControls],
    ["change:num_steps", drawControls],
    ["change:status", drawStatus],
    ["change:progress", drawStatus],
    ["change:error", drawStatus],
    ["change:message", drawStatus],
    ["change:seed", drawStatus],
    ["change:can_generate", drawStatus],
  ];
  for (const [event, handler] of handlers) model.on(event, handler);
  onData();
  drawStatus();
  return () => {
    for (const [event, handler] of handlers) model.off(event as never, handler);
    if (imageUrl) URL.revokeObjectURL(imageUrl);
  };
}
