import { describe, expect, it } from "vitest";
import { chips, occurrences } from "./words";

describe("chips", () => {
  it("keeps the text between spans and marks punctuation as not a word", () => {
    const spans = [
      { text: "a", start: 0, end: 1, word: 0, available: true },
      { text: "dog", start: 2, end: 5, word: 1, available: true },
      { text: ",", start: 5, end: 6, word: null, available: true },
      { text: "hat", start: 7, end: 10, word: 2, available: false },
    ];
    const out = chips("a dog, hat!", spans);
    expect(out.map((c) => c.kind)).toEqual(["word", "space", "word", "punct", "space", "word", "space"]);
    expect(out.map((c) => c.text).join("")).toBe("a dog, hat!");
    expect(out[5]).toEqual({ kind: "word", text: "hat", word: 2, available: false });
  });

  it("reads offsets in UTF-16 units, so an emoji before a word does not shift it", () => {
    // spans_state sends UTF-16 offsets: "🔴" is two units
    const spans = [
      { text: "a", start: 0, end: 1, word: 0, available: true },
      { text: "🔴", start: 2, end: 4, word: null, available: true },
      { text: "dog", start: 5, end: 8, word: 1, available: true },
    ];
    const out = chips("a 🔴 dog", spans);
    expect(out.map((c) => c.text)).toEqual(["a", " ", "🔴", " ", "dog"]);
  });
});

describe("occurrences", () => {
  it("numbers only repeated words, case-insensitively", () => {
    const spans = ["A", "dog", "a", "hat"].map((text, word) => ({ text, start: 0, end: 0, word, available: true }));
    expect([...occurrences(spans).entries()]).toEqual([[0, 1], [2, 2], [1, null], [3, null]]);
  });
});
