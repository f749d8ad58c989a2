/** Small DOM helpers shared by the components. */

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<Record<string, string>> = {},
  children: (Node | string)[] = [],
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) if (value !== undefined) node.setAttribute(key, value);
  for (const child of children) node.append(child);
  return node;
}

export function options(select: HTMLSelectElement, values: string[], labels?: string[]): void {
  select.replaceChildren(...values.map((v, i) => h("option", { value: v }, [labels ? labels[i] : v])));
}

/** Draw RGBA pixels into a canvas of the same size (a no-op where canvases cannot draw). */
export function paint(canvas: HTMLCanvasElement, rgba: Uint8ClampedArray | null): void {
  const ctx = canvas.getContext("2d");
  if (!ctx) return;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (rgba) ctx.putImageData(new ImageData(rgba as Uint8ClampedArray<ArrayBuffer>, canvas.width, canvas.height), 0, 0);
}

export function download(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** The shortest side the image is shown at, and the longest: small images are enlarged to read. */
export const MIN_DISPLAY = 384;
export const MAX_DISPLAY = 512;

export function displayWidth(width: number): number {
  return Math.max(MIN_DISPLAY, Math.min(MAX_DISPLAY, width));
}

/** An <img> with a canvas on top for the overlay; the canvas holds the map at its own size and the
 * browser scales it smoothly; an image enlarged 2x or more is drawn with crisp pixels. */
export function stage(width: number, imageSize: [number, number], mapSize: [number, number]) {
  const [H, W] = imageSize;
  const box = h("div", { class: "daam-stage" });
  box.style.width = `${width}px`; // at most: a narrower output area shrinks it (styles.ts)
  box.style.aspectRatio = `${Math.max(W, 1)} / ${Math.max(H, 1)}`;
  const img = h("img", { class: width >= 2 * W ? "daam-image daam-pixelated" : "daam-image", alt: "" });
  const canvas = h("canvas", { class: "daam-overlay" });
  canvas.width = Math.max(mapSize[1], 1);
  canvas.height = Math.max(mapSize[0], 1);
  box.append(img, canvas);
  return { box, img, canvas };
}
