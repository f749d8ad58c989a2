/**
 * The widget's DOM: components drawn from the model's traits (a pure function of them), plus the view's
 * transient state (the hovered word, whether the steps play), which never needs the kernel. Each trait
 * change redraws the components that depend on it.
 */
import { type Context, type DaamModel, type DaamState, type Shown, shownMaps, wordName } from "./context";
import { bytes } from "./codecs";
import { createChips } from "./chips";
import { createControls } from "./controls";
import { download, h } from "./dom";
import { overlayPicture } from "./export";
import { createGrid } from "./grid";
import { createHistory } from "./history";
import { createPinned } from "./pinned";
import { createMain, legendLines } from "./stage";
import { NO_ANSWER, NO_KERNEL, createStatus } from "./status";
import { CSS } from "./styles";
import { createTimeline } from "./timeline";

export type { DaamModel, DaamState };

/** The kernel-side traits that change when the kernel answers a request. */
const KERNEL_OWNED = ["status", "message", "error", "progress", "maps", "other_maps"] as const;

export function render({ model, el }: { model: DaamModel; el: HTMLElement }): () => void {
  let imageUrl = "";
  let cache: Shown | null = null;
  const view = { hovered: null as number | null, playing: false };

  const ctx: Context = {
    model,
    view,
    shown: () => (cache ??= shownMaps(model)),
    imageUrl: () => imageUrl,
    active: () => (view.hovered !== null ? view.hovered : model.get("selected")),
    wordName: (k) => wordName(model.get("spans"), k),
    hasKernel: () => model.get("has_kernel") !== false,
    set: (key, value) => {
      model.set(key, value);
      ctx.save();
    },
    save: () => void reachKernel(() => model.save_changes()),
    askKernel: (content) => {
      if (reachKernel(() => model.send(content))) ctx.expectKernel();
    },
    expectKernel: () => {
      const before = KERNEL_OWNED.map((key) => model.get(key));
      setTimeout(() => {
        if (KERNEL_OWNED.every((key, i) => model.get(key) === before[i])) status.say(NO_ANSWER);
      }, 4000);
    },
    refresh: () => {
      main.draw();
      grid.mark();
      timeline.drawChart();
      history.drawPanel();
    },
  };

  const main = createMain(ctx);
  const chips = createChips(ctx);
  const controls = createControls(ctx);
  const timeline = createTimeline(ctx);
  const grid = createGrid(ctx);
  const pinned = createPinned(ctx);
  const history = createHistory(ctx);
  const status = createStatus(ctx, saveOverlay);

  el.replaceChildren(
    h("div", { class: "daam" }, [
      h("style", {}, [CSS]),
      ...status.top,
      main.el,
      chips.el,
      timeline.el,
      controls.el,
      grid.el,
      pinned.el,
      history.el,
      status.actions,
    ]),
  );
  hideStaticPicture(el);
  /** Send to the kernel; false, and the widget says why, when it is gone (restarted: the comm is closed). */
  function reachKernel(send: () => void): boolean {
    try {
      send();
      return true;
    } catch {
      status.say(NO_KERNEL);
      return false;
    }
  }
  // Jupyter's keyboard shortcuts match the focused element itself (arrows move between cells): a control of
  // the widget, once focused, tells them to leave its keys alone, so sliders and tiles work as native ones.
  el.addEventListener("focusin", (event) => {
    (event.target as HTMLElement).setAttribute?.("data-lm-suppress-shortcuts", "true");
  });

  function saveOverlay(): void {
    const word = ctx.active();
    const shown = ctx.shown();
    const legend =
      word === null
        ? null
        : {
            word: ctx.wordName(word),
            detail: legendLines(ctx.wordName(word), shown.steps, model.get("scale"), shown.peaks[word] ?? 0, Math.max(0, ...shown.peaks)).detail,
            peak: model.get("scale") === "shared" ? Math.max(0, ...shown.peaks) : (shown.peaks[word] ?? 0),
            colormap: model.get("colormap"),
          };
    const canvas = overlayPicture(main.image(), main.overlay(), model.get("image_size"), legend);
    const name = word === null ? "image" : ctx.wordName(word);
    canvas.toBlob((blob) => blob && download(blob, `daam-${name.replace(/[^\w-]+/g, "_")}.png`), "image/png");
  }

  function loadImage(): void {
    if (imageUrl) URL.revokeObjectURL(imageUrl);
    const data = bytes(model.get("image"));
    imageUrl = data.length ? URL.createObjectURL(new Blob([data as BlobPart], { type: "image/png" })) : "";
  }

  const mapsChanged = () => {
    cache = null;
    try {
      ctx.shown();
    } catch (err) {
      cache = { maps: [], peaks: [], size: [0, 0], steps: "" };
      status.showError(String(err));
    }
  };
  const drawn = () => {
    main.draw();
    grid.draw();
    pinned.draw();
    timeline.draw();
    history.drawPanel();
  };
  const onData = () => {
    mapsChanged();
    loadImage();
    main.drawImage();
    controls.draw();
    chips.build();
    drawn();
    history.drawStrip();
    status.draw();
  };
  const onMaps = () => (mapsChanged(), drawn());
  const onSettings = () => (controls.draw(), drawn());
  const handlers: [string, () => void][] = [
    ["change:image", onData],
    ["change:maps", () => (onMaps(), chips.mark())],
    ["change:map_size", onData],
    ["change:spans", onData],
    ["change:prompt", () => (chips.build(), status.draw())],
    ["change:selected", () => (chips.mark(), ctx.refresh())],
    ["change:pinned", () => (chips.mark(), controls.draw(), pinned.draw())],
    ["change:steps", onMaps],
    ["change:step_maps", onMaps],
    ["change:step_mode", () => timeline.draw()],
    ["change:num_steps", onMaps],
    ["change:scale", () => (mapsChanged(), onSettings())],
    ["change:tau", onSettings],
    ["change:view", onSettings],
    ["change:opacity", onSettings],
    ["change:colormap", onSettings],
    ["change:compare", onSettings],
    ["change:grid", onSettings],
    ["change:resolutions", controls.draw],
    ["change:resolution", controls.draw],
    ["change:history", history.drawStrip],
    ["change:compare_to", () => (history.drawStrip(), history.drawPanel())],
    ["change:other_maps", history.drawPanel],
    ["change:status", () => (mapsChanged(), status.draw(), main.draw())],
    ["change:progress", status.draw],
    ["change:error", status.draw],
    ["change:message", status.draw],
    ["change:seed", status.draw],
    ["change:can_generate", status.draw],
  ];
  for (const [event, handler] of handlers) model.on(event, handler);
  onData();
  return () => {
    for (const [event, handler] of handlers) model.off(event as never, handler);
    timeline.stop();
    history.dispose();
    if (imageUrl) URL.revokeObjectURL(imageUrl);
  };
}

/** Hide the static picture shown beside the widget for pages that cannot run it (see _html_export.py).
 * Jupyter's output areas hide it by CSS (styles.ts); elsewhere it is found once the widget is in the page,
 * which happens after render returns. */
function hideStaticPicture(el: HTMLElement, frames = 120): void {
  const area = el.closest(".jp-OutputArea, .output, .cell-output-container");
  if (area === null) {
    if (frames > 0) requestAnimationFrame(() => hideStaticPicture(el, frames - 1));
    return;
  }
  for (const picture of area.querySelectorAll<HTMLElement>(".daam-fallback")) {
    picture.hidden = true;
    picture.style.display = "none";
  }
}
