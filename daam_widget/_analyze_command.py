"""The paper's tables for a dataset run: ``daam-widget analyze DIR``, as CSV files and figures.

Writes to ``DIR/analysis`` (or ``--out``):

- ``words.csv``, ``mask_area_by_pos.csv``, ``mask_area_by_word.csv``: each word's Eq. 7 mask area (§5.2:
  how broadly words attend), and its mean per part of speech and per word;
- ``pairs_toy.csv``, ``relations_toy.csv``: head-dependent pairs of the toy's captions (their grammar is
  known exactly: ``toy.ToyScorer``, the default for a run of the toy model) and their IoU and intersection
  over area per relation (§5.1); ``pairs_spacy.csv``, ``relations_spacy.csv`` the same from ``--nlp``'s
  parse (a spaCy pipeline you installed; nothing is downloaded);
- ``segmentation_toy.csv``: for the toy's captions, mIoU of nouns (and colour and size words) against their
  objects in the generated images, per τ (§4);
- a ``.png`` figure beside each summary table.

Under ``torchrun --nproc_per_node N -m daam_widget analyze DIR`` (or ``accelerate launch``), each process
measures a consecutive slice of the index; the last to end writes the tables, the same as one process's.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import shutil
import sys
from collections.abc import Iterable, Sequence
from dataclasses import astuple, fields
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from matplotlib.figure import Figure

from ._files import atomic_path, write_atomically, write_text_atomically
from ._run_files import SETTINGS, launch_id, launcher_rank, locked
from .analysis import TAUS, ImageMeasures, PairMeasures, RunAnalysis, Scorer, analyze_run


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


def csv_cells(row: Sequence[Any]) -> list[Any]:
    return [f"{x:.6g}" if isinstance(x, float) else x for x in row]


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A whole CSV table, written atomically."""

    def write(temporary: Path) -> None:
        with open(temporary, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows(csv_cells(row) for row in rows)

    write_atomically(path, write)


WORD_FIELDS = ["file", "word_index", "word", "pos", "area"]
PAIR_FIELDS = ["file", *(f.name for f in fields(PairMeasures))]


def item_fields(table: str) -> list[str]:
    """The columns of a table with a row per word (``words``) or pair (``pairs_{source}``) of every image,
    written as the images are measured."""
    return PAIR_FIELDS if table.startswith("pairs_") else WORD_FIELDS


class ItemTables:
    """The item tables (``item_fields``) written row by row while ``analyze_run`` goes (its ``on_image``),
    under temporary names; ``close`` makes them whole. A table with no row is not written (``words`` always
    is). ``scorer``: the name the scorer's pairs are written under."""

    def __init__(self, folder: Path, suffix: str = "", scorer: str | None = None) -> None:
        self.folder, self.suffix, self.scorer = folder, suffix, scorer
        self._files: dict[str, tuple[TextIO, Any]] = {}
        self._targets = contextlib.ExitStack()
        self._table("words")

    def _table(self, name: str) -> Any:
        if name not in self._files:
            temporary = self._targets.enter_context(atomic_path(self.folder / f"{name}{self.suffix}.csv"))
            f = self._targets.enter_context(open(temporary, "w", newline="", encoding="utf-8"))
            writer = csv.writer(f)
            writer.writerow(item_fields(name))
            self._files[name] = (f, writer)
        return self._files[name][1]

    def add(self, m: ImageMeasures) -> None:
        self._table("words").writerows(
            csv_cells([a.file, a.word_index, a.word, a.pos, a.area]) for a in m.areas
        )
        for source, pairs in ((self.scorer, m.scorer_pairs), ("spacy", m.parsed_pairs)):
            if pairs:
                self._table(f"pairs_{source}").writerows(csv_cells([m.file, *astuple(p)]) for p in pairs)

    def close(self) -> list[str]:
        """Make every table whole (files are closed before their renames: last in, first out); returns the
        names of the tables written."""
        self._targets.close()
        return list(self._files)


def write_summaries(result: RunAnalysis, out: Path) -> list[Path]:
    """The summary tables of ``result`` as CSV, each with a figure beside it, and ``skipped.csv`` when files
    were left out; returns the files written. Figures are drawn on ``matplotlib.figure.Figure`` objects: no
    pyplot state, no backend change."""
    written = []
    if result.skipped:
        write_csv(out / "skipped.csv", ["file", "reason"], result.skipped)
        written.append(out / "skipped.csv")
    for key in ("pos", "word"):
        table = result.area_by(key)
        write_csv(
            out / f"mask_area_by_{key}.csv",
            [key, "words", "area"],
            ([k, int(v["words"]), v["area"]] for k, v in table.items()),
        )
        written.append(out / f"mask_area_by_{key}.csv")
    _bars(
        out / "mask_area_by_pos.png",
        result.area_by("pos"),
        "area",
        f"mean Eq. 7 mask area (τ = {result.tau})",
    )
    written.append(out / "mask_area_by_pos.png")
    for source in (s for s in (result.scorer, "spacy") if s is not None):
        relations = result.relations(source)
        if relations:
            columns = ["pairs", "iou", "head_in_dependent", "dependent_in_head"]
            write_csv(
                out / f"relations_{source}.csv",
                ["relation", *columns],
                ([r, *(v[c] for c in columns)] for r, v in relations.items()),
            )
            _bars(out / f"relations_{source}.png", relations, columns[1:], f"head-dependent pairs ({source})")
            written += [out / f"relations_{source}.csv", out / f"relations_{source}.png"]
    segmentation = result.segmentation()
    if segmentation:
        name = f"segmentation_{result.scorer}"
        write_csv(
            out / f"{name}.csv",
            ["part", "words", *(f"miou_tau_{t}" for t in result.taus)],
            ([part, v["words"], *(v["miou"][t] for t in result.taus)] for part, v in segmentation.items()),
        )
        _lines(out / f"{name}.png", segmentation, result.taus)
        written += [out / f"{name}.csv", out / f"{name}.png"]
    return written


SHARES = ".shares"


def analyze_into(
    run: Path, out: Path, share: tuple[int, int] = (0, 1), **options: Any
) -> tuple[RunAnalysis, list[Path]] | None:
    """``analyze_run`` of this process's share of ``run``, its tables written into ``out``.

    Each of the ``world`` processes of a launch writes its share (its item tables and its tallies) into
    ``out/.shares``; the one that finds every share of its launch there, under the folder's lock, adds them
    up, joins the item tables in index order and writes the summaries. It returns the whole result and the
    files written; the others return ``None``. One process alone does the same with one share."""
    rank, world = share
    shares = out / SHARES
    shares.mkdir(parents=True, exist_ok=True)
    scorer = options.get("scorer")
    tables = ItemTables(shares, f".{rank}", scorer.name if scorer is not None else None)
    result = analyze_run(run, share=share, on_image=tables.add, **options)
    names = tables.close()
    launch = launch_id(world)
    mine = {"launch": launch, "world": world, "rank": rank, "tables": names, "result": result.to_json()}
    write_text_atomically(shares / f"{rank}.json", json.dumps(mine))
    with locked(out):
        held = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(shares.glob("*.json"))]
        ours = sorted(
            (h for h in held if (h["launch"], h["world"]) == (launch, world)), key=lambda h: h["rank"]
        )
        if [h["rank"] for h in ours] != list(range(world)):
            return None
        whole = RunAnalysis.from_json(ours[0]["result"])
        for h in ours[1:]:
            whole.merge(RunAnalysis.from_json(h["result"]))
        joined = list(dict.fromkeys(name for h in ours for name in h["tables"]))
        written = [_join(shares, out, name, world) for name in joined]
        written += write_summaries(whole, out)
        shutil.rmtree(shares)
    return whole, written


def _join(shares: Path, out: Path, name: str, world: int) -> Path:
    """One item table from the shares' tables, in rank order (the index's order), its header once."""
    target = out / f"{name}.csv"

    def write(temporary: Path) -> None:
        with open(temporary, "wb") as joined:
            for rank in range(world):
                part = shares / f"{name}.{rank}.csv"
                if not part.exists():
                    continue
                with open(part, "rb") as f:
                    header = f.readline()
                    if joined.tell() == 0:
                        joined.write(header)
                    shutil.copyfileobj(f, joined)

    write_atomically(target, write)
    return target


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
    write_atomically(path, lambda temporary: fig.savefig(temporary, dpi=100, format="png"))


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
    write_atomically(path, lambda temporary: fig.savefig(temporary, dpi=100, format="png"))


def scorer_for(run: Path, choice: str | None) -> Scorer | None:
    """The scorer asked for, or by default the toy world's for a run of the toy's pipeline (``run.json``)."""
    if choice is None:
        try:
            settings = json.loads((run / SETTINGS).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            settings = {}
        choice = "toy" if settings.get("pipeline") in ("ToyPipeline", "ToyFluxPipeline") else "none"
    if choice == "none":
        return None
    from .toy import ToyScorer

    return ToyScorer()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="daam-widget analyze", description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run's folder (daam-widget run ... --out DIR)")
    parser.add_argument("--out", type=Path, help="where the tables go (default: DIR/analysis)")
    parser.add_argument("--tau", type=float, default=0.4, help="Eq. 7 threshold of the masks (default 0.4)")
    parser.add_argument(
        "--nlp", help="an installed spaCy pipeline (en_core_web_sm) or its folder, for POS and parses"
    )
    parser.add_argument(
        "--scorer",
        choices=("toy", "none"),
        help="what knows the prompts' grammar and objects: the toy world's (the default for a run of the "
        "toy's pipeline) or none",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes that share the images (each starts in about 5 s: worth it from a few thousand)",
    )
    args = parser.parse_args(argv)
    nlp = load_nlp(args.nlp) if args.nlp else None
    out = args.out or args.run / "analysis"
    try:
        share = launcher_rank()
        scorer = scorer_for(args.run, args.scorer)
        done = analyze_into(
            args.run,
            out,
            share,
            tau=args.tau,
            nlp=nlp,
            taus=sorted({*TAUS, args.tau}),
            workers=args.workers,
            scorer=scorer,
        )
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if done is None:
        print(f"rank {share[0]}/{share[1]}: share measured; the last rank to end writes the tables")
        return 0
    result, written = done
    for path in written:
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
