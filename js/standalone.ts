/**
 * The widget without a kernel, for `DaamWidget.save_html`: a local model holding the saved traits (binary
 * ones given as base64) drives the same `render`, so hover, pins and the slider work in a plain HTML file.
 */
import { localModel } from "./local_model";
import { render } from "./view";

export function mount(el: HTMLElement, state: Record<string, unknown>, buffers: Record<string, string>): void {
  const full: Record<string, unknown> = { ...state, has_kernel: false };
  for (const [key, b64] of Object.entries(buffers)) {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    full[key] = new DataView(bytes.buffer);
  }
  render({ model: localModel(full) as never, el });
}

(globalThis as unknown as { DaamWidget: unknown }).DaamWidget = { mount };
