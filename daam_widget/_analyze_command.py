"""The paper's tables for a dataset run: ``daam-widget analyze DIR``, as CSV files and figures.

Writes to ``DIR/analysis`` (or ``--out``):

- ``words.csv``, ``mask_area_by_pos.csv``, ``mask_area_by_word.csv``: each word's Eq. 7 mask area (§5.2:
  how broadly words attend), and its mean per part of speech and per word;
- ``pairs_toy.csv``, ``relations_toy.csv``: head-dependent pairs of the toy's captions (their grammar is
  known exactly) and their IoU and intersection over area per relation (§5.1); ``pairs_spacy.csv``,
  ``relations_spacy.csv`` the same from ``--nlp``'s parse (a spaCy pipeline you installed; nothing is
  downloaded);
- ``segmentation_toy.csv``: for the toy's captions, mIoU of nouns (and colour and size words) against their
  objects in the generated images, per τ (§4);
- a ``.png`` figure beside each summary table.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from .analysis import TAUS, PairMeasures, RunAnalysis, analyze_run, summarize_by_relation


def load_nlp(name: str) -> Any:
    """``spacy.load(name)``: an installed pipeline package or a folder. Nothing is downloaded."""
    try:
        import spacy
    except ImportError:
        raise SystemExit(
            f"--nlp {name} needs spaCy and that pipeline installed (pip install spacy, then the pipeline's "
            "package, e.g. en_core_web_sm); without --nlp the toy's captions are parsed from their grammar"
        ) from None
    try:
        return spacy.load(name)
    except OSError as error:
        raise SystemExit(
            f"--nlp {name}: spaCy cannot load it ({error}); it is not downloaded for you"
        ) from None


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for row in rows:
            writer.writerow([f"{x:.6g}" if isinstance(x, float) else x for x in row])


def write_tables(result: RunAnalysis, out: Path) -> list[Path]:
    """Every table of ``result`` as CSV (with a figure beside each summary) in ``out``; returns the files
    written. Figures are drawn on ``matplotlib.figure.Figure`` objects: no pyplot state, no backend change."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    if result.skipped:
        write_csv(out / "skipped.csv", ["file", "reason"], result.skipped)
        written.append(out / "skipped.csv")
    write_csv(
        out / "words.csv",
        ["file", "word_index", "word", "pos", "area"],
        ([a.file, a.word_index, a.word, a.pos, a.area] for a in result.areas),
    )
    for key in ("pos", "word"):
        table = result.area_by(key)
        write_csv(
            out / f"mask_area_by_{key}.csv",
            [key, "words", "area"],
            ([k, int(v["words"]), v["area"]] for k, v in table.items()),
        )
        written.append(out / f"mask_area_by_{key}.csv")
    written.append(out / "mask_area_by_pos.png")
    _bars(
        out / "mask_area_by_pos.png",
        result.area_by("pos"),
        "area",
        f"mean Eq. 7 mask area (τ = {result.tau})",
    )
    for source, pairs in (("toy", result.toy_pairs), ("spacy", result.parsed_pairs)):
        if pairs:
            written += _relations(out, source, pairs)
    segmentation = result.segmentation()
    if segmentation:
        write_csv(
            out / "segmentation_toy.csv",
            ["part", "words", *(f"miou_tau_{t}" for t in result.taus)],
            ([part, v["words"], *(v["miou"][t] for t in result.taus)] for part, v in segmentation.items()),
        )
        _lines(out / "segmentation_toy.png", segmentation, result.taus)
        written += [out / "segmentation_toy.csv", out / "segmentation_toy.png"]
    return [out / "words.csv", *written]


def _relations(out: Path, source: str, pairs: list[PairMeasures]) -> list[Path]:
    fields = list(asdict(pairs[0]))
    write_csv(out / f"pairs_{source}.csv", fields, ([asdict(p)[f] for f in fields] for p in pairs))
    table = summarize_by_relation(pairs)
    columns = ["pairs", "iou", "head_in_dependent", "dependent_in_head"]
    write_csv(
        out / f"relations_{source}.csv",
        ["relation", *columns],
        ([r, *(v[c] for c in columns)] for r, v in table.items()),
    )
    _bars(
        out / f"relations_{source}.png",
        table,
        ("iou", "head_in_dependent", "dependent_in_head"),
        f"head-dependent pairs ({source})",
    )
    return [out / f"pairs_{source}.csv", out / f"relations_{source}.csv", out / f"relations_{source}.png"]


def _bars(path: Path, table: dict[str, dict[str, float]], columns: str | Sequence[str], title: str) -> None:
    columns = [columns] if isinstance(columns, str) else list(columns)
    names = list(table)
    fig = Figure(figsize=(max(4.0, 0.8 * len(names) * len(columns)), 3.2))
    ax = fig.subplots()
    width = 0.8 / len(columns)
    for c, column in enumerate(columns):
        ax.bar(np.arange(len(names)) + c * width, [table[n][column] for n in names], width, label=column)
    ax.set_xticks(
        np.arange(len(names)) + 0.4 - width / 2,
        [f"{n}\n({int(table[n].get('words', table[n].get('pairs', 0)))})" for n in names],
    )
    ax.set_title(title)
    if len(columns) > 1:
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _lines(path: Path, segmentation: dict[str, dict[str, Any]], taus: Sequence[float]) -> None:
    fig = Figure(figsize=(4.5, 3.2))
    ax = fig.subplots()
    for part, v in segmentation.items():
        ax.plot(list(taus), [v["miou"][t] for t in taus], marker="o", label=f"{part} ({v['words']})")
    ax.set_xlabel("τ")
    ax.set_ylabel("mIoU against the object")
    ax.set_ylim(0, 1)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="daam-widget analyze", description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run's folder (daam-widget run ... --out DIR)")
    parser.add_argument("--out", type=Path, help="where the tables go (default: DIR/analysis)")
    parser.add_argument("--tau", type=float, default=0.4, help="Eq. 7 threshold of the masks (default 0.4)")
    parser.add_argument(
        "--nlp", help="an installed spaCy pipeline (en_core_web_sm) or its folder, for POS and parses"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes that share the images (each starts in about 5 s: worth it from a few thousand)",
    )
    args = parser.parse_args(argv)
    nlp = load_nlp(args.nlp) if args.nlp else None
    try:
        result = analyze_run(
            args.run, tau=args.tau, nlp=nlp, taus=sorted({*TAUS, args.tau}), workers=args.workers
        )
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    out = args.out or args.run / "analysis"
    for path in write_tables(result, out):
        print(path)
    by_pos = ", ".join(f"{k or '?'} {v['area']:.3f}" for k, v in result.area_by("pos").items())
    print(f"{result.images} images; mean mask area by part of speech: {by_pos}")
    if result.cut_off_words:
        print(f"{result.cut_off_words} words came after the text encoder's window: no map, left out")
    for file, reason in result.skipped:
        print(f"skipped {file}: {reason}", file=sys.stderr)
    if result.skipped:
        print(f"{len(result.skipped)} files could not be read and were left out (listed above)")
    nouns = result.segmentation().get("noun")
    if nouns:
        print(f"toy nouns: mIoU {nouns['miou'][args.tau]:.3f} at τ = {args.tau} ({nouns['words']} words)")
    return 0
