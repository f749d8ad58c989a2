import { describe, expect, it } from "vitest";
import { localModel } from "./local_model";

describe("local model", () => {
  it("fires change events on set, like anywidget's model", () => {
    const model = localModel({ tau: 0.4 });
    const seen: unknown[] = [];
    const handler = () => seen.push(model.get("tau"));
    model.on("change:tau", handler);
    model.set("tau", 0.7);
    model.off("change:tau", handler);
    model.set("tau", 0.9);
    expect(seen).toEqual([0.7]);
  });
});
