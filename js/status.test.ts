// @vitest-environment happy-dom
import { describe, expect, it } from "vitest";
import { context } from "./fixtures";
import { createStatus } from "./status";

describe("status", () => {
  it("sends the prompt and seed to the kernel and shows progress while generating", () => {
    const ctx = context({ status: "generating", progress: [3, 10] });
    const status = createStatus(ctx, () => {});
    status.draw();
    const [row, progress] = status.top;
    (row.querySelector(".daam-prompt") as HTMLInputElement).value = "a cat";
    (row.querySelector(".daam-generate-button") as HTMLButtonElement).disabled = false;
    (row.querySelector(".daam-generate-button") as HTMLButtonElement).click();
    expect(ctx.sent).toEqual([{ type: "generate", prompt: "a cat", seed: 0 }]);
    expect(progress.hidden).toBe(false);
    expect(progress.textContent).toMatch(/^step 3 of 10/);
  });
});
