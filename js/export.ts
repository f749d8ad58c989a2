/** The overlay as a PNG worth putting in a paper: at least 512 px, with the word and a colour bar. */
import { colormap, formatValue } from "./colormaps";

export const MIN_EXPORT = 512;
export const FOOTER = 56;

/** The exported image's (height, width): the image enlarged so that its width is at least 512 px. */
export function exportSize(imageSize: [number, number]): [number, number] {
  const [H, W] = imageSize;
  const scale = Math.max(1, MIN_EXPORT / Math.max(W, 1));
  return [Math.round(H * scale), Math.round(W * scale)];
}

export function overlayPicture(
  image: HTMLImageElement | null,
  overlay: HTMLCanvasElement,
  imageSize: [number, number],
  legend: { word: string; detail: string; peak: number; colormap: "inferno" | "viridis" | "jet" } | null,
): HTMLCanvasElement {
  const [h, w] = exportSize(imageSize);
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = h + (legend ? FOOTER : 0);
  const ctx = canvas.getContext("2d");
  if (!ctx) return canvas;
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.imageSmoothingEnabled = w < 2 * imageSize[1];
  if (image && image.complete && image.naturalWidth) ctx.drawImage(image, 0, 0, w, h);
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(overlay, 0, 0, w, h);
  if (!legend) return canvas;
  ctx.fillStyle = "#222";
  ctx.font = "bold 18px sans-serif";
  ctx.fillText(legend.word, 10, h + 22);
  ctx.font = "11px sans-serif";
  ctx.fillText(legend.detail, 10, h + 44, w - 20);
  const lut = colormap(legend.colormap);
  const barX = Math.max(w - 210, w / 2), barW = w - barX - 60;
  for (let x = 0; x < barW; x++) {
    const v = Math.round((x / Math.max(barW - 1, 1)) * 255);
    ctx.fillStyle = `rgb(${lut[v * 3]},${lut[v * 3 + 1]},${lut[v * 3 + 2]})`;
    ctx.fillRect(barX + x, h + 8, 1, 16);
  }
  ctx.fillStyle = "#222";
  ctx.font = "12px sans-serif";
  ctx.fillText("0", barX - 12, h + 21);
  ctx.fillText(formatValue(legend.peak), barX + barW + 4, h + 21);
  return canvas;
}
