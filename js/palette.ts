/** Categorical colours for pinned words (matplotlib's tab10). */
export const PALETTE: [number, number, number][] = [
  [31, 119, 180],
  [255, 127, 14],
  [44, 160, 44],
  [214, 39, 40],
  [148, 103, 189],
  [140, 86, 75],
  [227, 119, 194],
  [127, 127, 127],
  [188, 189, 34],
  [23, 190, 207],
];

export function paletteColor(k: number): string {
  const [r, g, b] = PALETTE[k % PALETTE.length];
  return `rgb(${r}, ${g}, ${b})`;
}
