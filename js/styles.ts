/** The widget's CSS, injected into its own element (one bundle, nothing else to load). */
import { THUMB } from "./timeline";

export const CSS = `
.jp-OutputArea:has(.daam) .daam-fallback, .cell_container:has(.daam) .daam-fallback { display: none !important; }
.daam { font: 13px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--jp-ui-font-color1, #222);
  display: flex; flex-direction: column; gap: 8px; padding: 4px 0; }
.daam [hidden] { display: none !important; }
.daam-row { display: flex; flex-wrap: wrap; align-items: center; gap: 6px 14px; }
.daam-main { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
.daam-stage-box { position: relative; }
.daam { max-width: 100%; min-width: 0; }
.daam-stage-box { max-width: 100%; }
.daam-stage { position: relative; flex: none; max-width: 100%; height: auto; background: #333; }
.daam-stage img, .daam-stage canvas { position: absolute; inset: 0; width: 100%; height: 100%; }
.daam-stage img.daam-pixelated { image-rendering: pixelated; }
.daam-stage img.daam-grey { filter: grayscale(1) contrast(0.8) brightness(1.1); }
.daam-waiting { position: absolute; left: 6px; top: 6px; color: #fff; background: #0008; padding: 1px 6px;
  border-radius: 3px; font-size: 12px; }
.daam-side { display: grid; min-width: 200px; max-width: 320px; }
.daam-side > * { grid-area: 1 / 1; }
.daam-info { display: flex; flex-direction: column; gap: 6px; min-height: 11em; }
.daam-side > .daam-off { visibility: hidden; }
.daam-legend { display: flex; flex-direction: column; gap: 3px; }
.daam-legend-title { font-weight: 600; font-size: 15px; }
.daam-legend-detail { color: var(--jp-ui-font-color2, #555); font-size: 12px; }
.daam-legend-bar { display: flex; align-items: center; gap: 6px; }
.daam-colorbar { width: 140px; height: 12px; border: 1px solid #8886; }
.daam-words { display: flex; flex-wrap: wrap; align-items: center; row-gap: 4px; font-size: 15px; }
.daam-space { white-space: pre; }
.daam-chip { font: inherit; border: 1px solid #8888; border-radius: 4px; padding: 1px 6px; cursor: pointer;
  background: var(--jp-layout-color1, #fff); color: inherit; }
.daam-chip[data-occurrence]::after { content: attr(data-occurrence); font-size: 10px; vertical-align: sub;
  margin-left: 1px; opacity: 0.75; }
.daam-chip:hover, .daam-chip:focus-visible { background: #ffe08a; color: #222; outline: none; }
.daam-chip.daam-selected { font-weight: 700; box-shadow: 0 0 0 2px var(--jp-ui-font-color2, #0006); }
.daam-chip.daam-pinned { background: var(--daam-pin); border-color: var(--daam-pin); color: #fff; }
.daam-chip.daam-pinned::before { content: "● "; }
.daam-chip:disabled { cursor: not-allowed; opacity: 0.45; text-decoration: line-through; }
.daam-punct { color: var(--jp-ui-font-color2, #666); padding: 0 1px; }
.daam-controls label, .daam-steps label, .daam-frame-row label { display: inline-flex; align-items: center; gap: 4px; }
.daam-controls input[type=range] { width: 110px; }
.daam-controls input.daam-concepts { width: 160px; }
.daam-map-note { flex-basis: 100%; font-size: 0.85em; opacity: 0.8; }
.daam-map-note:empty { display: none; }
.daam-layer-chart { display: flex; align-items: flex-end; gap: 8px; margin: 4px 0; font-size: 0.85em; }
.daam-layer-chart[hidden] { display: none; }
.daam-layer-bars { cursor: pointer; border-bottom: 1px solid currentColor; }
.daam-steps, .daam-frame-row { align-items: flex-start; }
.daam-step-options, .daam-frame-options { display: flex; flex-direction: column; gap: 4px; }
.daam-track, .daam-frame-track { display: flex; flex-direction: column; width: 360px; max-width: 100%; }
.daam-scrubber, .daam-frame-scrubber { -webkit-appearance: none; appearance: none; width: 100%; height: 18px; margin: 0;
  background: transparent; }
.daam-scrubber::-webkit-slider-runnable-track, .daam-frame-scrubber::-webkit-slider-runnable-track { height: 4px; border-radius: 2px;
  background: var(--jp-border-color1, #bbb); }
.daam-scrubber::-moz-range-track, .daam-frame-scrubber::-moz-range-track { height: 4px; border-radius: 2px; background: var(--jp-border-color1, #bbb); }
.daam-scrubber::-webkit-slider-thumb, .daam-frame-scrubber::-webkit-slider-thumb { -webkit-appearance: none; width: ${THUMB}px; height: ${THUMB}px;
  margin-top: -5px; border: none; border-radius: 50%; background: var(--jp-brand-color1, #1976d2); }
.daam-scrubber::-moz-range-thumb, .daam-frame-scrubber::-moz-range-thumb { width: ${THUMB}px; height: ${THUMB}px; border: none; border-radius: 50%;
  background: var(--jp-brand-color1, #1976d2); }
.daam-scrubber:focus-visible, .daam-frame-scrubber:focus-visible { outline: 2px solid var(--jp-brand-color1, #1976d2); outline-offset: 2px; }
.daam-mass-chart, .daam-frame-chart { width: 100%; height: 64px; border-bottom: 1px solid #8888; cursor: pointer; }
.daam-axis, .daam-frame-axis { position: relative; height: 14px; font-size: 11px; color: var(--jp-ui-font-color2, #555); }
.daam-axis span, .daam-frame-axis span { position: absolute; top: 0; transform: translateX(-50%); }
.daam-mass-key, .daam-frame-key { font-size: 12px; color: var(--jp-ui-font-color2, #555); }
.daam-frame-chart { height: 40px; }
.daam-frame-label { font-variant-numeric: tabular-nums; }
.daam-grid, .daam-compare, .daam-history-strip, .daam-history-compare { display: flex; flex-wrap: wrap; gap: 10px; }
.daam-grid-tile { cursor: pointer; }
.daam-grid-mass { width: 128px; height: 18px; }
.daam-grid-tile.daam-selected figcaption { font-weight: 700; }
.daam-figure { display: flex; flex-direction: column; gap: 2px; margin: 0; }
.daam-figure figcaption { font-size: 12px; max-width: 256px; }
.daam-hint { display: flex; flex-wrap: wrap; gap: 2px 10px; align-content: flex-start; }
.daam-key { display: inline-flex; align-items: center; }
.daam-swatch { display: inline-block; width: 10px; height: 10px; margin-right: 4px; border-radius: 2px; }
.daam-history-strip { align-items: center; }
.daam-history-item { padding: 0; border: 2px solid transparent; background: none; cursor: pointer; }
.daam-history-item img { width: 48px; height: 48px; image-rendering: pixelated; display: block; }
.daam-history-item.daam-selected { border-color: #1f77b4; }
.daam-history-verdict { display: flex; flex-direction: column; gap: 6px; justify-content: center; }
.daam-iou { font-weight: 600; }
.daam-error { color: var(--jp-error-color0, #b00020); background: var(--jp-error-color3, #fdecea);
  border: 1px solid var(--jp-error-color2, #f5c2c0); border-radius: 4px;
  padding: 6px 8px; white-space: pre-wrap; font-family: var(--jp-code-font-family, monospace); font-size: 12px; }
.daam-progress { display: flex; align-items: center; gap: 8px; }
.daam-progress progress { width: 240px; }
.daam-message { color: var(--jp-ui-font-color2, #555); font-size: 12px; }
.daam-prompt { width: 320px; }
.daam-seed { width: 70px; }
.daam-steps input[type=number] { width: 52px; }
`;
