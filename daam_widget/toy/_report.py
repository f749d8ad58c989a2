"""The toy evaluation's report as markdown tables (``toy.evaluate`` writes it beside the JSON)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._evaluation import TAU


def markdown(report: dict[str, Any]) -> str:
    """The report's tables: generation accuracy per setting, mIoU vs baselines at τ = 0.4, and per τ."""
    tau = str(TAU)
    lines = [
        f"Held-out scenes: seeds {report['first_seed']}..{report['first_seed'] + report['images'] - 1} "
        f"({report['images']} images)."
        + (
            ""
            if report["layers"] == "all"
            else f" Maps summed over layers {', '.join(report['layers'])} only."
        ),
        "",
        "| steps | guidance | objects right | colour present | shape right (colour present) "
        "| images without unrequested objects | size words obeyed | relations obeyed |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in report["generated"]:
        g = run["generation"]
        lines.append(
            f"| {run['steps']} | {run['guidance']} | {_pct(g['objects_right'])} ({g['objects']}) "
            f"| {_pct(g['colors_present'])} | {_pct(g['shape_right_when_present'])} "
            f"| {_pct(g['images_without_unrequested'])} "
            f"| {_pct(g['size_words_obeyed'])} ({g['sized_objects']}) "
            f"| {_pct(g['relations_obeyed'])} ({g['related_images']}) |"
        )
    grids = report["attention_grids"]
    rows = [
        (f"generated, {run['steps']} steps, guidance {run['guidance']}", run["daam"])
        for run in report["generated"]
    ]
    if "real" in report:
        rows.append((f"noised real, t = {report['real']['timesteps']}", report["real"]["daam"]))
    lines += [
        "",
        f"DAAM mean IoU at τ = {tau} against each word's object, beside masks that need no attention and "
        "the best a map at each attention resolution could score (the true mask seen cell by cell):",
        "",
        _table_row(
            ["images", "words", "count", "DAAM", "whole image", "centred disk"]
            + [f"perfect {grid} map" for grid in grids]
        ),
        _table_row(["---"] * (6 + len(grids))),
    ]
    for name, daam in rows:
        for part, p in daam["parts"].items():
            scores = [p["miou"][tau], p["whole_image"], p["centred_disk"]]
            scores += [p["perfect_maps"][grid] for grid in grids]
            lines.append(_table_row([name, part, str(p["words"])] + [f"{x:.3f}" for x in scores]))
    taus = report["taus"]
    lines += [
        "",
        "DAAM mean IoU across τ:",
        "",
        "| images | words | " + " | ".join(f"τ = {t}" for t in taus) + " |",
        "| --- | --- | " + " | ".join("---" for _ in taus) + " |",
    ]
    for name, daam in rows:
        for part, p in daam["parts"].items():
            lines.append(
                f"| {name} | {part} | " + " | ".join(f"{p['miou'][str(t)]:.3f}" for t in taus) + " |"
            )
    return "\n".join(lines) + "\n"


def _table_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _pct(share: float | None) -> str:
    return "n/a" if share is None else f"{100 * share:.1f}%"


def methods_markdown(reports: dict[str, dict[str, Any]]) -> str:
    """``_map_methods.compare`` reports (by toy model) as one table: noun and colour mIoU at τ = 0.4 for
    each method, beside the best a perfect map at the model's attention grids could score; then the layers
    chosen."""
    from ._map_methods import METHODS

    grids = sorted({g for r in reports.values() for k in r["kinds"].values() for g in k["perfect_maps"]})
    header = ["model", "images", "words", "count", *METHODS.values(), *(f"perfect {g} map" for g in grids)]
    lines = [_table_row(header), _table_row(["---"] * len(header))]
    for model, report in reports.items():
        for kind, k in report["kinds"].items():
            for part in ("noun", "color"):
                cells = [model, kind, "colour" if part == "color" else part, str(k["words"][part])]
                for method in METHODS:
                    miou = k["miou"].get(method, {}).get(part, {}).get(str(TAU))
                    cells.append("—" if miou is None else f"{miou:.3f}")
                for grid in grids:
                    ceiling = k["perfect_maps"].get(grid, {}).get(part)
                    cells.append("—" if ceiling is None else f"{ceiling:.3f}")
                lines.append(_table_row(cells))
    lines += ["", "Layers chosen on the selection scenes (by noun mIoU at τ = 0.4):", ""]
    lines += [
        _table_row(["model", "images", "best single layer", "best 2-3 layers"]),
        _table_row(["---"] * 4),
    ]
    for model, report in reports.items():
        for kind, k in report["kinds"].items():
            lines.append(_table_row([model, kind, _layers(k["best_layer"]), _layers(k["best_layers"])]))
    return "\n".join(lines) + "\n"


def _layers(names: Sequence[str]) -> str:
    return " + ".join(f"`{n}`" for n in names)
