/** Generating (prompt, seed, progress), errors, and the actions: save the overlay PNG, save the maps file. */
import type { Context } from "./context";
import { h } from "./dom";

export const NO_ANSWER = "No answer from the kernel yet: it is busy, or this page has none (an export).";
export const NO_KERNEL = "This widget lost its kernel (restarted or shut down): run its cell again.";

export function createStatus(ctx: Context, saveOverlay: () => void) {
  const { model } = ctx;
  const promptInput = h("input", { class: "daam-prompt", type: "text", "aria-label": "prompt" });
  const seedInput = h("input", { class: "daam-seed", type: "number", "aria-label": "seed", step: "1" });
  const generateButton = h("button", { class: "daam-generate-button", type: "button" }, ["Generate"]);
  const generateRow = h("div", { class: "daam-row daam-generate" }, [promptInput, "seed", seedInput, generateButton]);
  const progressBar = h("progress");
  const progressText = h("span", { class: "daam-progress-text" });
  const progressRow = h("div", { class: "daam-progress" }, [progressBar, progressText]);
  const errorBox = h("div", { class: "daam-error", role: "alert" });
  const savePng = h("button", { class: "daam-save-png", type: "button" }, ["Save overlay PNG"]);
  const saveMaps = h("button", { class: "daam-save-maps", type: "button" }, ["Save maps file"]);
  const message = h("span", { class: "daam-message daam-status" });
  const actions = h("div", { class: "daam-row daam-actions" }, [savePng, saveMaps, message]);

  function draw(): void {
    const kernel = ctx.hasKernel();
    generateRow.hidden = !(kernel && model.get("can_generate"));
    if (document.activeElement !== promptInput) promptInput.value = model.get("prompt");
    if (document.activeElement !== seedInput) seedInput.value = String(model.get("seed"));
    const generating = model.get("status") === "generating";
    generateButton.disabled = generating;
    progressRow.hidden = !generating;
    const [step, total] = model.get("progress");
    progressBar.max = Math.max(total, 1);
    progressBar.value = step;
    progressText.textContent = `step ${step} of ${total}: the maps so far are shown as they form`;
    errorBox.hidden = !model.get("error");
    errorBox.textContent = model.get("error");
    saveMaps.hidden = !kernel;
    message.textContent = model.get("message");
  }

  function showError(text: string): void {
    errorBox.hidden = false;
    errorBox.textContent = text;
  }

  generateButton.addEventListener("click", () =>
    ctx.askKernel({ type: "generate", prompt: promptInput.value, seed: Number(seedInput.value) }),
  );
  savePng.addEventListener("click", saveOverlay);
  saveMaps.addEventListener("click", () => ctx.askKernel({ type: "save_maps" }));
  return { top: [generateRow, progressRow, errorBox], actions, draw, showError, say: (text: string) => (message.textContent = text) };
}
