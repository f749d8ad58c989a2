/** Colour maps as look-up tables, and the raw values their legend shows. */

export type ColormapName = "inferno" | "viridis" | "jet";

// Polynomial fits of matplotlib's viridis and inferno (Matt Zucker), and matplotlib's piecewise-linear jet.
const POLY: Record<Exclude<ColormapName, "jet">, number[][]> = {
  viridis: [
    [0.2777273272234177, 0.005407344544966578, 0.3340998053353061],
    [0.1050930431085774, 1.404613529898575, 1.384590162594685],
    [-0.3308618287255563, 0.214847559468213, 0.09509516302823659],
    [-4.634230498983486, -5.799100973351585, -19.33244095627987],
    [6.228269936347081, 14.17993336680509, 56.69055260068105],
    [4.776384997670288, -13.74514537774601, -65.35303263337234],
    [-5.435455855934631, 4.645852612178535, 26.3124352495832],
  ],
  inferno: [
    [0.0002189403691192265, 0.001651004631001012, -0.01948089843709184],
    [0.1065134194856116, 0.5639564367884091, 3.932712388889277],
    [11.60249308247187, -3.972853965665698, -15.9423941062914],
    [-41.70399613139459, 17.43639888205313, 44.35414519872813],
    [77.162935699427, -33.40235894210092, -81.80730925738993],
    [-71.31942824499214, 32.62606426397723, 73.20951985803202],
    [25.13112622477341, -12.24266895238567, -23.07032500287172],
  ],
};
const JET: [number, number][][] = [
  [[0, 0], [0.35, 0], [0.66, 1], [0.89, 1], [1, 0.5]],
  [[0, 0], [0.125, 0], [0.375, 1], [0.64, 1], [0.91, 0], [1, 0]],
  [[0, 0.5], [0.11, 1], [0.34, 1], [0.65, 0], [1, 0]],
];

function piecewise(points: [number, number][], x: number): number {
  for (let i = 1; i < points.length; i++) {
    const [x1, y1] = points[i];
    const [x0, y0] = points[i - 1];
    if (x <= x1) return y0 + ((y1 - y0) * (x - x0)) / (x1 - x0);
  }
  return points[points.length - 1][1];
}

function clamp255(x: number): number {
  return Math.max(0, Math.min(255, Math.round(x * 255)));
}

function polyval(coefficients: number[], x: number): number {
  let y = 0;
  for (let i = coefficients.length - 1; i >= 0; i--) y = y * x + coefficients[i];
  return y;
}

const lutCache = new Map<ColormapName, Uint8Array>();

/** A 256-entry RGB look-up table: entry v is the colour of the value v/255. */
export function colormap(name: ColormapName): Uint8Array {
  const cached = lutCache.get(name);
  if (cached) return cached;
  if (name !== "jet" && !(name in POLY)) {
    throw new Error(`unknown colour map ${JSON.stringify(name)}; choose inferno, viridis or jet`);
  }
  const lut = new Uint8Array(256 * 3);
  for (let v = 0; v < 256; v++) {
    const x = v / 255;
    for (let c = 0; c < 3; c++) {
      const y = name === "jet" ? piecewise(JET[c], x) : polyval(POLY[name].map((row) => row[c]), x);
      lut[v * 3 + c] = clamp255(y);
    }
  }
  lutCache.set(name, lut);
  return lut;
}

/** A raw map value for the legend: short, and exact enough to compare words. */
export function formatValue(x: number): string {
  if (x === 0) return "0";
  const a = Math.abs(x);
  return a >= 1e4 || a < 1e-2 ? x.toExponential(2) : x.toPrecision(3);
}
