/**
 * The widget's DOM: components drawn from the model's traits (a pure function of them), plus the view's
 * transient state (the hovered word, whether the steps play), which never needs the kernel. Each trait
 * change redraws the components that depend on it.
 */
import { type Context, type DaamModel, type DaamState, type Shown, shownMaps, wordName } from "./context";
import { bytes } from "./codecs";
import { createChips } from "./chips";
import { createControls } from "./controls";
import { createLayerChart } from "./layer_chart";
import { download, h } from "./dom";
import { overlayPicture } from "./export";
import { createGrid } from "./grid";
import { createHistory } from "./history";
import { createPinned } from "./pinned";
import { createPlayer } from "./player";
import { createMain, legendLines } from "./stage";
import { NO_ANSWER, NO_KERNEL, createStatus } from "./status";
import { CSS } from "./styles";
import { createTimeline } from "./timeline";

export type { DaamModel, DaamState };

/** The kernel-side traits that change when the kernel answers a request. */
const KERNEL_OWNED = ["status", "message", "error", "progress", "maps", "other_maps"] as const;

export function render({ model, el }: { model: DaamModel; el: HTMLElement }): () => void {
  let imageUrl = "";
  let frameUrls: string[] = [];
  let cache: Shown | null = null;
  const view = { hovered: null as number | null, playing: false };

  const ctx: Context = {
    model,
    view,
    shown: () => (cache ??= shownMaps(model)),
    imageUrl: () => (frameUrls.length ? (frameUrls[model.get("frame")] ?? frameUrls[0]) : imageUrl),
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
      layerChart.draw();
      grid.mark();
      timeline.drawChart();
      player.drawChart();
      history.drawPanel();
    },
  };

  const main = createMain(ctx);
  const chips = createChips(ctx);
  const controls = createControls(ctx);
  const layerChart = createLayerChart(ctx);
  const timeline = createTimeline(ctx);
  const player = createPlayer(ctx);
  const grid = createGrid(ctx);
  const pinned = createPinned(ctx);
  const history = createHistory(ctx);
  const status = createStatus(ctx, saveOverlay);

  el.replaceChildren(
    h("div", { class: "daam" }, [
      h("style", {}, [CSS]),
      ...status.top,
      main.el,
      player.el,
      chips.el,
      timeline.el,
      controls.el,
      layerChart.el,
      grid.el,
      pinned.el,
      history.el,
      status.actions,
    ]),
  );
  const stopWatching = watchStaticPicture(el);
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
            detail: legendLines(ctx.wordName(word), shown.steps, model.get("scale"), shown.peaks[word] ?? 0, Math.max(0, ...shown.peaks), shown.peakOf).detail,
            peak: model.get("scale") === "shared" ? Math.max(0, ...shown.peaks) : (shown.peaks[word] ?? 0),
            colormap: model.get("colormap"),
          };
    const canvas = overlayPicture(main.image(), main.overlay(), model.get("image_size"), legend);
    const name = word === null ? "image" : ctx.wordName(word);
    canvas.toBlob((blob) => blob && download(blob, `daam-${name.replace(/[^\w-]+/g, "_")}.png`), "image/png");
  }

  function loadImage(): void {
    for (const url of [imageUrl, ...frameUrls]) if (url) URL.revokeObjectURL(url);
    const data = bytes(model.get("image"));
    imageUrl = data.length ? URL.createObjectURL(new Blob([data as BlobPart], { type: "image/png" })) : "";
    const video = bytes(model.get("video"));
    frameUrls = (model.get("video_frames") ?? []).map(([offset, length]) =>
      URL.createObjectURL(new Blob([video.subarray(offset, offset + length) as BlobPart], { type: "image/jpeg" })),
    );
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
    player.draw();
    history.drawPanel();
  };
  const onData = () => {
    mapsChanged();
    loadImage();
    main.drawImage();
    controls.draw();
    layerChart.draw();
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
    ["change:words_text", () => chips.build()],
    ["change:map_kind", controls.draw],
    ["change:layer", () => (controls.draw(), layerChart.draw())],
    ["change:layer_names", controls.draw],
    ["change:layer_focus", () => layerChart.draw()],
    ["change:concepts", controls.draw],
    ["change:concepts_available", controls.draw],
    ["change:map_note", controls.draw],
    ["change:frame", () => (mapsChanged(), main.showFrame(), drawn())],
    ["change:video", onData],
    ["change:frame_sources", onMaps],
    ["change:latent_frames", () => (onMaps(), controls.draw())],
    ["change:frame_mass", () => player.draw()],
    ["change:per_frame", () => (mapsChanged(), onSettings())],
    ["change:fps", () => player.retime()],
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
    player.stop();
    history.dispose();
    stopWatching();
    for (const url of [imageUrl, ...frameUrls]) if (url) URL.revokeObjectURL(url);
  };
}

/** The element that holds one cell's outputs, where a frontend puts the widget and the static picture in
 * one document: JupyterLab and Notebook 7 (and nbconvert's lab export), VS Code's notebook webview
 * (div.cell_container > div.output_container > div.output), nbconvert's classic export. */
const CELL_OUTPUTS = [".jp-OutputArea", ".cell_container", ".cell-output-container", ".output"];

function cellOutputs(el: HTMLElement): Element | null {
  for (const selector of CELL_OUTPUTS) {
    const found = el.closest(selector);
    if (found) return found;
  }
  // A frame of its own holds one cell's outputs (Colab's output frames): its whole page.
  return el.isConnected && window.parent !== window ? document.body : null;
}

function hide(area: Element): void {
  for (const picture of area.querySelectorAll<HTMLElement>(".daam-fallback")) {
    picture.hidden = true;
    picture.style.display = "none";
  }
}

/** Hide the static picture shown beside the widget for pages that cannot run it (see _html_export.py),
 * now and when it comes later (VS Code renders outputs when idle; the widget shows its picture after its
 * first generation). Jupyter's output areas and VS Code's cells hide it by CSS too (styles.ts). The widget
 * is in the page only after render returns, so its cell is looked for over some frames. Returns the stop. */
function watchStaticPicture(el: HTMLElement): () => void {
  let observer: MutationObserver | null = null;
  let frame = 0;
  let frames = 120;
  const look = () => {
    const area = cellOutputs(el);
    if (area === null) {
      if (frames-- > 0) frame = requestAnimationFrame(look);
      return;
    }
    hide(area);
    observer = new MutationObserver(() => hide(area));
    observer.observe(area, { childList: true, subtree: true });
  };
  look();
  return () => {
    cancelAnimationFrame(frame);
    observer?.disconnect();
  };
}
