/** The widget's CSS, injected into its own element (one bundle, nothing else to load). */
export const CSS = `
.daam { font: 13px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--jp-ui-font-color1, #222);
  display: flex; flex-direction: column; gap: 8px; padding: 4px 0; }
.daam [hidden] { display: none !important; }
.daam-row { display: flex; flex-wrap: wrap; align-items: center; gap: 6px 14px; }
.daam-main { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
.daam-stage { position: relative; flex: none; background: #000; }
.daam-stage img, .daam-stage canvas { position: absolute; inset: 0; width: 100%; height: 100%; }
.daam-stage img.daam-pixelated { image-rendering: pixelated; }
.daam-side { display: flex; flex-direction: column; gap: 6px; min-width: 180px; }
.daam-legend { display: grid; grid-template-columns: auto 1fr auto; gap: 2px 6px; align-items: center; }
.daam-legend-title { grid-column: 1 / 4; font-weight: 600; }
.daam-colorbar { width: 140px; height: 12px; border: 1px solid #8886; }
.daam-words { display: flex; flex-wrap: wrap; align-items: center; row-gap: 4px; font-size: 15px; }
.daam-space { white-space: pre; }
.daam-chip { font: inherit; border: 1px solid #8888; border-radius: 4px; padding: 1px 6px; cursor: pointer;
  background: var(--jp-layout-color1, #fff); color: inherit; border-bottom-width: 3px; }
.daam-chip:hover, .daam-chip:focus-visible { background: #ffe08a; color: #222; outline: none; }
.daam-chip.daam-selected { font-weight: 700; }
.daam-chip.daam-pinned { border-bottom-color: var(--daam-pin); }
.daam-chip:disabled { cursor: not-allowed; opacity: 0.45; text-decoration: line-through; }
.daam-punct { color: #888; padding: 0 1px; }
.daam-controls label { display: inline-flex; align-items: center; gap: 4px; }
.daam-controls input[type=range] { width: 110px; }
.daam-compare { display: flex; flex-wrap: wrap; gap: 10px; }
.daam-figure { display: flex; flex-direction: column; gap: 2px; margin: 0; }
.daam-figure figcaption { font-size: 12px; }
.daam-swatch { display: inline-block; width: 10px; height: 10px; margin-right: 4px; border-radius: 2px; }
.daam-error { color: #b00020; background: #fdecea; border: 1px solid #f5c2c0; border-radius: 4px;
  padding: 6px 8px; white-space: pre-wrap; font-family: var(--jp-code-font-family, monospace); font-size: 12px; }
.daam-progress { display: flex; align-items: center; gap: 8px; }
.daam-progress progress { width: 240px; }
.daam-message { color: #555; font-size: 12px; }
.daam-prompt { width: 320px; }
.daam-seed { width: 70px; }
.daam-steps input { width: 52px; }
`;
