/** The prompt's spans: its chips in text order, and the occurrence numbers of repeated words. */

export type Span = {
  text: string;
  start: number;
  end: number;
  /** Index into the words (and into the maps), or null for punctuation. */
  word: number | null;
  /** False when the tokenizer's window cut the word off: it has no map. */
  available: boolean;
};

export type Chip =
  | { kind: "word"; text: string; word: number; available: boolean }
  | { kind: "punct"; text: string }
  | { kind: "space"; text: string };

/** The prompt as chips in text order: words, punctuation, and the whitespace between them. */
export function chips(prompt: string, spans: Span[]): Chip[] {
  const out: Chip[] = [];
  let at = 0;
  for (const span of spans) {
    if (span.start > at) out.push({ kind: "space", text: prompt.slice(at, span.start) });
    if (span.word === null) out.push({ kind: "punct", text: span.text });
    else out.push({ kind: "word", text: span.text, word: span.word, available: span.available });
    at = Math.max(at, span.end);
  }
  if (at < prompt.length) out.push({ kind: "space", text: prompt.slice(at) });
  return out;
}

/** For each word index, its occurrence number (1, 2, ...) among words of the same text; null if unique. */
export function occurrences(spans: Span[]): Map<number, number | null> {
  const byText = new Map<string, number[]>();
  for (const span of spans) {
    if (span.word === null) continue;
    const key = span.text.toLowerCase();
    byText.set(key, [...(byText.get(key) ?? []), span.word]);
  }
  const out = new Map<number, number | null>();
  for (const words of byText.values()) words.forEach((w, i) => out.set(w, words.length > 1 ? i + 1 : null));
  return out;
}

/** The indices of the words the model saw (not cut off by its text encoder's window), in text order. */
export function seenWords(spans: Span[]): number[] {
  return spans.flatMap((s) => (s.word !== null && s.available ? [s.word] : []));
}
