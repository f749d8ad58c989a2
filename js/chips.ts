/** The prompt's words as chips: hover shows a word, click pins it; repeated words carry their number. */
import type { Context } from "./context";
import { h } from "./dom";
import { paletteColor } from "./palette";
import { chips, occurrences } from "./words";

/** One line for the words the model did not see. */
export function cutOffLine(unseen: number, total: number): string {
  const [come, were] = unseen === 1 ? ["comes", "was"] : ["come", "were"];
  return (
    `${unseen} of the prompt's ${total} words ${come} after the text encoder's window and ${were} not ` +
    "seen by the model: struck through, with no map."
  );
}

export function createChips(ctx: Context) {
  const { model } = ctx;
  const words = h("div", { class: "daam-words", role: "group", "aria-label": "words of the prompt: press to pin" });
  const clear = h("button", { class: "daam-clear-pins", type: "button", title: "unpin every word" }, ["Clear pins"]);
  const cut = h("div", { class: "daam-message daam-cut" });
  const el = h("div", { class: "daam-chips" }, [h("div", { class: "daam-row" }, [words, clear]), cut]);

  /** Built once per prompt; pins and the selection only restyle them, so the chip under the pointer
   * stays the same element (replacing it would lose its pointerout, and the hover would stick). */
  function build(): void {
    const spans = model.get("spans");
    const numbers = occurrences(spans);
    const available = ctx.shown().maps;
    words.replaceChildren(
      ...chips(model.get("words_text") || model.get("prompt"), spans).map((chip) => {
        if (chip.kind === "space") return h("span", { class: "daam-space" }, [chip.text]);
        if (chip.kind === "punct") return h("span", { class: "daam-punct" }, [chip.text]);
        const button = h("button", { class: "daam-chip", type: "button" }, [chip.text]);
        button.dataset.word = String(chip.word);
        const n = numbers.get(chip.word);
        if (n) button.dataset.occurrence = String(n);
        const cut = !chip.available || !available[chip.word];
        if (cut) {
          button.disabled = true;
          button.title = "cut off by the text encoder's window: no map";
        }
        if (n || cut) {
          const label = [chip.text, n ? `occurrence ${n}` : "", cut ? "cut off by the text encoder's window, no map" : ""];
          button.setAttribute("aria-label", label.filter(Boolean).join(", "));
        }
        return button;
      }),
    );
    const unseen = spans.filter((s) => s.word !== null && !s.available).length;
    const total = spans.filter((s) => s.word !== null).length;
    cut.hidden = unseen === 0;
    cut.textContent = cutOffLine(unseen, total);
    mark();
  }

  function mark(): void {
    const pinned = model.get("pinned");
    const selected = model.get("selected");
    for (const button of words.querySelectorAll<HTMLButtonElement>(".daam-chip")) {
      const word = Number(button.dataset.word);
      const pin = pinned.indexOf(word);
      button.classList.toggle("daam-pinned", pin >= 0);
      button.setAttribute("aria-pressed", String(pin >= 0));
      if (pin >= 0) button.style.setProperty("--daam-pin", paletteColor(pin));
      else button.style.removeProperty("--daam-pin");
      button.classList.toggle("daam-selected", word === selected);
    }
    clear.hidden = pinned.length === 0;
  }

  function chipOf(event: Event): number | null {
    const target = (event.target as HTMLElement | null)?.closest?.(".daam-chip") as HTMLButtonElement | null;
    return target && !target.disabled ? Number(target.dataset.word) : null;
  }
  function enter(event: Event): void {
    const word = chipOf(event);
    if (word === null || word === ctx.view.hovered) return;
    ctx.view.hovered = word;
    ctx.refresh();
  }
  function leave(event: Event): void {
    const next = (event as PointerEvent).relatedTarget as HTMLElement | null;
    const chip = (event.target as HTMLElement).closest?.(".daam-chip");
    if (chipOf(event) === null || (next && next.closest?.(".daam-chip") === chip)) return;
    ctx.view.hovered = null;
    ctx.refresh();
  }
  words.addEventListener("pointerover", enter);
  words.addEventListener("focusin", enter);
  words.addEventListener("pointerout", leave);
  words.addEventListener("focusout", leave);
  words.addEventListener("pointerleave", () => {
    if (ctx.view.hovered === null) return;
    ctx.view.hovered = null;
    ctx.refresh();
  });
  words.addEventListener("click", (event) => {
    const word = chipOf(event);
    if (word === null) return;
    const pinned = model.get("pinned");
    const next = pinned.includes(word) ? pinned.filter((k) => k !== word) : [...pinned, word];
    model.set("pinned", next);
    model.set("selected", next.includes(word) ? word : next.length ? next[next.length - 1] : null);
    ctx.save();
  });
  clear.addEventListener("click", () => {
    model.set("pinned", []);
    model.set("selected", null);
    ctx.save();
  });

  return { el, build, mark };
}
