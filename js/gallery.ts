/**
 * The gallery of a dataset run (`DaamGallery`): one page of thumbnails with their prompts, a word filter and
 * a pager. A pure function of the model's traits: the kernel sends only the shown page (`items`, and their
 * PNGs end to end in `thumbnails`); a click sets `selected`, which the kernel opens in a DaamWidget.
 */
import type { AnyModel } from "@anywidget/types";
import { bytes } from "./codecs";
import { h } from "./dom";

export interface GalleryItem {
  /** Position of the image in the run's index. */
  row: number;
  prompt: string;
  /** "line k, image j" */
  label: string;
  /** Bytes of this item's PNG in `thumbnails` (0: the file holds no image). */
  size: number;
}

export interface GalleryState {
  items: GalleryItem[];
  thumbnails: DataView | null;
  filter: string;
  page: number;
  pages: number;
  matches: number;
  total: number;
  selected: number | null;
  error: string;
}

export type GalleryModel = AnyModel<GalleryState>;

const CSS = `
.daam-gallery { font: 13px system-ui, sans-serif; color: var(--jp-ui-font-color1, #222); }
.daam-gallery-bar { display: flex; gap: 8px; align-items: center; margin-bottom: 8px; flex-wrap: wrap; }
.daam-gallery-bar input { padding: 3px 6px; min-width: 14em; }
.daam-gallery-count { color: var(--jp-ui-font-color2, #555); }
.daam-gallery-error { color: var(--jp-error-color0, #b00020); }
.daam-gallery-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(132px, 1fr)); gap: 8px; }
.daam-gallery-item { border: 2px solid transparent; border-radius: 4px; padding: 2px; cursor: pointer;
  background: none; text-align: left; font: inherit; color: inherit; }
.daam-gallery-item:hover { border-color: #9ab; }
.daam-gallery-item.daam-selected { border-color: #1565c0; }
.daam-gallery-item img, .daam-gallery-empty { width: 128px; height: 128px; object-fit: contain;
  image-rendering: pixelated; background: #eee; display: block; }
.daam-gallery-prompt { font-size: 12px; max-height: 3.6em; overflow: hidden; }
.daam-gallery-label { font-size: 11px; color: var(--jp-ui-font-color2, #666); }
`;

/** An element with a class and, optionally, text. */
function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls: string, text = ""): HTMLElementTagNameMap[K] {
  return h(tag, cls ? { class: cls } : {}, text ? [text] : []);
}

export function render({ model, el: root }: { model: GalleryModel; el: HTMLElement }): () => void {
  const style = document.createElement("style");
  style.textContent = CSS;
  const box = el("div", "daam-gallery");
  const filter = el("input", "daam-gallery-filter");
  filter.type = "search";
  filter.placeholder = "filter by word (e.g. dog, or: red circle)";
  const previous = el("button", "daam-gallery-previous", "‹ previous");
  const next = el("button", "daam-gallery-next", "next ›");
  const count = el("span", "daam-gallery-count");
  const error = el("span", "daam-gallery-error");
  const bar = el("div", "daam-gallery-bar");
  bar.append(filter, previous, next, count, error);
  const grid = el("div", "daam-gallery-grid");
  box.append(style, bar, grid);
  root.append(box);
  let urls: string[] = [];

  const set = (key: "filter" | "page" | "selected", value: string | number) => {
    model.set(key, value as never);
    model.save_changes();
  };

  function drawBar(): void {
    const page = model.get("page");
    const pages = model.get("pages");
    const matches = model.get("matches");
    const total = model.get("total");
    if (document.activeElement !== filter) filter.value = model.get("filter");
    previous.disabled = page <= 0;
    next.disabled = page >= pages - 1;
    const of = matches === total ? `${total} images` : `${matches} of ${total} images`;
    count.textContent = pages > 1 ? `${of}, page ${page + 1} of ${pages}` : of;
    error.textContent = model.get("error");
  }

  function drawGrid(): void {
    urls.forEach((u) => URL.revokeObjectURL(u));
    urls = [];
    const data = bytes(model.get("thumbnails"));
    let offset = 0;
    const cells = model.get("items").map((item) => {
      const cell = el("button", "daam-gallery-item");
      cell.type = "button";
      cell.dataset.row = String(item.row);
      cell.title = item.prompt;
      if (item.size > 0) {
        const url = URL.createObjectURL(new Blob([data.slice(offset, offset + item.size)], { type: "image/png" }));
        urls.push(url);
        const img = el("img", "");
        img.src = url;
        img.alt = item.prompt;
        cell.append(img);
      } else {
        cell.append(el("div", "daam-gallery-empty"));
      }
      offset += item.size;
      cell.append(el("div", "daam-gallery-prompt", item.prompt), el("div", "daam-gallery-label", item.label));
      cell.classList.toggle("daam-selected", item.row === model.get("selected"));
      cell.addEventListener("click", () => set("selected", item.row));
      return cell;
    });
    grid.replaceChildren(...cells);
  }

  let typing: ReturnType<typeof setTimeout> | undefined;
  filter.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => set("filter", filter.value), 250);
  });
  filter.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      clearTimeout(typing);
      set("filter", filter.value);
    }
  });
  previous.addEventListener("click", () => set("page", model.get("page") - 1));
  next.addEventListener("click", () => set("page", model.get("page") + 1));

  const onBar = () => drawBar();
  const onGrid = () => drawGrid();
  for (const key of ["page", "pages", "matches", "total", "filter", "error"] as const) model.on(`change:${key}`, onBar);
  for (const key of ["items", "thumbnails", "selected"] as const) model.on(`change:${key}`, onGrid);
  drawBar();
  drawGrid();
  return () => {
    for (const key of ["page", "pages", "matches", "total", "filter", "error"] as const) model.off(`change:${key}`, onBar);
    for (const key of ["items", "thumbnails", "selected"] as const) model.off(`change:${key}`, onGrid);
    urls.forEach((u) => URL.revokeObjectURL(u));
  };
}

export default { render };
