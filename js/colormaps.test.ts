import { describe, expect, it } from "vitest";
import { colormap, formatValue } from "./colormaps";

describe("colormap", () => {
  // matplotlib's colours at 0, 64, 128, 191 and 255 of 255
  const MATPLOTLIB = {
    jet: [[0, 0, 128], [0, 128, 255], [125, 255, 122], [255, 152, 0], [128, 0, 0]],
    viridis: [[68, 1, 84], [59, 82, 139], [33, 145, 140], [92, 200, 99], [253, 231, 37]],
    inferno: [[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 140, 10], [252, 255, 164]],
  };
  for (const [name, colours] of Object.entries(MATPLOTLIB)) {
    it(`matches matplotlib's ${name} within 6 levels`, () => {
      const lut = colormap(name as "jet");
      [0, 64, 128, 191, 255].forEach((v, i) =>
        colours[i].forEach((c, k) => expect(Math.abs(lut[v * 3 + k] - c)).toBeLessThanOrEqual(6)),
      );
    });
  }
  it("says which colour maps exist", () => {
    expect(() => colormap("turbo" as never)).toThrow(/inferno, viridis or jet/);
  });
});

it("formats legend values briefly", () => {
  expect(formatValue(0)).toBe("0");
  expect(formatValue(1.23456)).toBe("1.23");
  expect(formatValue(123456)).toBe("1.23e+5");
});
