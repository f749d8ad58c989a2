import { expect, it } from "vitest";
import { exportSize } from "./export";

it("exports the overlay at least 512 px wide", () => {
  expect(exportSize([64, 64])).toEqual([512, 512]);
  expect(exportSize([768, 1024])).toEqual([768, 1024]);
  expect(exportSize([100, 200])).toEqual([256, 512]);
});
