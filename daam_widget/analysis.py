"""The paper's analyses as functions over ``HeatMaps``.

- Segmentation (§4): each noun's Eq. 7 mask against a ground-truth mask, averaged as mIoU, across τ.
- Word pairs (§5.1): for head-dependent pairs of a syntactic relation, the IoU of their masks and how much of
  each lies in the other, summarised per relation.
- Entanglement (§5.2): the same measures on chosen pairs (cohyponyms, adjective-noun), and how far a
  word's mask spreads (its area).

Dependency parsing is optional: ``dependency_pairs`` takes a spaCy ``Language`` the caller loaded; nothing
here downloads a model. A world that knows more of its images than their maps say (their grammar, where
their objects are) gives it as a ``Scorer``: the toy's is ``daam_widget.toy.ToyScorer``.

Over a dataset run (``daam-widget run``), ``analyze_run(DIR)`` reads every image's maps once and
gives the same measures for the whole run (``RunAnalysis``, tallies that do not grow with the run);
``daam-widget analyze DIR`` writes them as CSV tables and figures.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ._heat_maps import HeatMaps, Key
from ._metrics import intersection_over_area, iou, threshold

TAUS = (0.2, 0.3, 0.4, 0.5, 0.6)


def segmentation_miou(samples: Iterable[tuple[HeatMaps, Key, np.ndarray]], tau: float = 0.4) -> float:
    """Mean IoU of words' Eq. 7 masks against ground-truth masks: ``(maps, word, true mask)`` samples."""
    return tau_sweep(samples, (tau,))[tau]


def tau_sweep(
    samples: Iterable[tuple[HeatMaps, Key, np.ndarray]], taus: Sequence[float] = TAUS
) -> dict[float, float]:
    """``segmentation_miou`` at each τ, computing each soft map once."""
    scores: dict[float, list[float]] = {t: [] for t in taus}
    for maps, key, truth in samples:
        soft = maps.soft(key)
        if soft.shape != truth.shape:
            raise ValueError(f"the true mask is {truth.shape}, the map {soft.shape}: they must match")
        for t in taus:
            scores[t].append(iou(threshold(soft, t), np.asarray(truth, bool)))
    if not scores[taus[0]]:
        raise ValueError("tau_sweep needs at least one (maps, word, mask) sample")
    return {t: float(np.mean(s)) for t, s in scores.items()}


def mask_area(maps: HeatMaps, key: Key, tau: float = 0.4) -> float:
    """The fraction of the image a word's Eq. 7 mask covers: how broadly the word attends."""
    return float(maps.mask(key, tau).mean())


@dataclass(frozen=True)
class PairMeasures:
    """Two words' maps compared: mask IoU, and how much of each mask lies in the other (§5.1)."""

    head: str
    dependent: str
    relation: str
    iou: float
    head_in_dependent: float
    dependent_in_head: float


def compare_pairs(
    maps: HeatMaps, pairs: Iterable[tuple[Key, Key, str]], tau: float = 0.4
) -> list[PairMeasures]:
    """Measures for ``(head, dependent, relation)`` word pairs of one image."""
    result = []
    for head, dependent, relation in pairs:
        a, b = maps.mask(head, tau), maps.mask(dependent, tau)
        result.append(
            PairMeasures(
                maps.span(head).text,
                maps.span(dependent).text,
                relation,
                iou(a, b),
                intersection_over_area(a, b),
                intersection_over_area(b, a),
            )
        )
    return result


def summarize_by_relation(measures: Iterable[PairMeasures]) -> dict[str, dict[str, float]]:
    """Mean of each measure per relation, with the number of pairs: the paper's Table 4 shape."""
    tallies: dict[str, Tally] = {}
    for m in measures:
        tallies.setdefault(m.relation, Tally()).add({name: getattr(m, name) for name in _PAIR_MEASURES})
    return _relation_table(tallies)


def _relation_table(tallies: dict[str, Tally]) -> dict[str, dict[str, float]]:
    return {r: {"pairs": t.count, **t.means()} for r, t in sorted(tallies.items())}


def dependency_pairs(maps: HeatMaps, nlp: Any) -> list[tuple[int, int, str]]:
    """``(head word index, dependent word index, relation)`` from a spaCy parse of the prompt.

    ``nlp`` is a loaded spaCy pipeline (``spacy.load("en_core_web_sm")``). Parser tokens are matched to the
    prompt's words by character offsets; tokens that are not words (punctuation) are skipped.
    """
    words = maps.layout.word_spans
    index_at = {w.start: i for i, w in enumerate(words)}
    pairs = []
    for token in nlp(maps.prompt):
        head = token.head
        if head.i == token.i or token.idx not in index_at or head.idx not in index_at:
            continue
        pairs.append((index_at[head.idx], index_at[token.idx], token.dep_))
    return pairs


def parts_of_speech(maps: HeatMaps, nlp: Any) -> list[str]:
    """Each word's Universal POS tag from ``nlp`` (a loaded spaCy pipeline); ``""`` where it has none."""
    tags = {token.idx: token.pos_ for token in nlp(maps.prompt)}
    return [tags.get(span.start, "") for span in maps.layout.word_spans]


class Scorer(Protocol):
    """What a world knows of its images beyond their maps, for ``analyze_run``: its captions' parts of
    speech and grammar, and where each word's object is in a generated image. ``name`` names its tables
    (``pairs_{name}.csv``, ``RunAnalysis.relations(name)``). It must pickle, for worker processes."""

    name: str

    def parts_of_speech(self, maps: HeatMaps) -> list[str]:
        """Each word's Universal POS tag, ``""`` where unknown."""
        ...

    def dependencies(self, maps: HeatMaps) -> list[tuple[int, int, str]] | None:
        """``(head, dependent, relation)`` word-index pairs, or None for a prompt it cannot parse."""
        ...

    def word_scores(self, maps: HeatMaps, taus: Sequence[float]) -> list[tuple[str, str, dict[float, float]]]:
        """Each word it can judge: ``(part, word, {tau: IoU of its Eq. 7 mask with its object})``."""
        ...


@dataclass(frozen=True)
class WordArea:
    """One word of one image of a run: its Eq. 7 mask's share of the image (§5.2) and part of speech."""

    file: str
    word_index: int
    word: str
    pos: str
    area: float


@dataclass
class Tally:
    """Counts and sums of named measures, without the values: means over any number of images in constant
    memory, and the tallies of several processes add up to the tally of all."""

    count: int = 0
    sums: dict[str, float] = field(default_factory=dict)

    def add(self, values: dict[str, float]) -> None:
        self.count += 1
        for name, value in values.items():
            self.sums[name] = self.sums.get(name, 0.0) + value

    def merge(self, other: Tally) -> None:
        self.count += other.count
        for name, value in other.sums.items():
            self.sums[name] = self.sums.get(name, 0.0) + value

    def means(self) -> dict[str, float]:
        return {name: total / self.count for name, total in self.sums.items()}


@dataclass
class ImageMeasures:
    """Every measure of one image of a run, as ``analyze_run`` hands it to ``on_image``.

    ``areas``: each word's mask area; ``scorer_pairs`` / ``parsed_pairs``: head-dependent pairs from the
    scorer's grammar / from the spaCy parse; ``word_scores``: each word the scorer judges, with its IoU at
    each τ against its object, as ``(part, word, {tau: iou})``; ``cut_off_words``: words after the text
    encoder's window (no map).
    """

    file: str
    areas: list[WordArea] = field(default_factory=list)
    scorer_pairs: list[PairMeasures] = field(default_factory=list)
    parsed_pairs: list[PairMeasures] = field(default_factory=list)
    word_scores: list[tuple[str, str, dict[float, float]]] = field(default_factory=list)
    cut_off_words: int = 0


_PAIR_MEASURES = ("iou", "head_in_dependent", "dependent_in_head")


@dataclass
class RunAnalysis:
    """The paper's measures over the images of a run (``analyze_run``), kept as tallies: its size does not
    grow with the images. Each image's own measures go to ``analyze_run``'s ``on_image``."""

    tau: float
    taus: tuple[float, ...]
    scorer: str | None = None
    """The name of the scorer whose pairs and segmentation these are (``relations(scorer)``)."""
    images: int = 0
    cut_off_words: int = 0
    """Words of the prompts after the text encoder's window: no map, left out of every measure."""
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """Files that could not be read, and why: left out, not a stop."""
    tallies: dict[str, dict[str, Tally]] = field(default_factory=lambda: defaultdict(dict))
    """Per table (``area_by_pos``, ``area_by_word``, ``relations_{scorer}``, ``relations_spacy``,
    ``segmentation``), per row (a part of speech, a word, a relation, a part), its tally."""

    def add(self, m: ImageMeasures) -> None:
        """Count one image's measures in."""
        self.images += 1
        self.cut_off_words += m.cut_off_words
        for a in m.areas:
            self._tally("area_by_pos", a.pos).add({"area": a.area})
            self._tally("area_by_word", a.word.lower()).add({"area": a.area})
        for source, pairs in ((self.scorer, m.scorer_pairs), ("spacy", m.parsed_pairs)):
            for pair in pairs:
                self._tally(f"relations_{source}", pair.relation).add(
                    {name: getattr(pair, name) for name in _PAIR_MEASURES}
                )
        for part, _, ious in m.word_scores:
            self._tally("segmentation", part).add({str(t): ious[t] for t in self.taus})

    def merge(self, other: RunAnalysis) -> None:
        """Count in another share of the same run (another process's)."""
        if (other.tau, other.taus, other.scorer) != (self.tau, self.taus, self.scorer):
            raise ValueError(
                f"cannot merge analyses at τ {other.tau}, {other.taus} by {other.scorer!r} and at "
                f"{self.tau}, {self.taus} by {self.scorer!r}"
            )
        self.images += other.images
        self.cut_off_words += other.cut_off_words
        self.skipped += other.skipped
        for table, rows in other.tallies.items():
            for key, tally in rows.items():
                self._tally(table, key).merge(tally)

    def _tally(self, table: str, key: str) -> Tally:
        return self.tallies[table].setdefault(key, Tally())

    def area_by(self, key: str = "pos") -> dict[str, dict[str, float]]:
        """Mean mask area and the number of words, per part of speech (``"pos"``) or per word (``"word"``,
        lower case), sorted by name."""
        if key not in ("pos", "word"):
            raise ValueError(f"area_by takes 'pos' or 'word', not {key!r}")
        rows = self.tallies.get(f"area_by_{key}", {})
        return {k: {"words": t.count, "area": t.means()["area"]} for k, t in sorted(rows.items())}

    def relations(self, source: str | None = None) -> dict[str, dict[str, float]]:
        """Per relation, the number of head-dependent pairs and the mean of each measure (the paper's Table 4
        shape), from the scorer's grammar (default) or the spaCy parse (``"spacy"``); sorted by relation."""
        source = self.scorer if source is None else source
        if source not in (self.scorer, "spacy"):
            raise ValueError(f"relations takes {self.scorer!r} (the scorer) or 'spacy', not {source!r}")
        return _relation_table(self.tallies.get(f"relations_{source}", {}))

    def segmentation(self) -> dict[str, dict[str, Any]]:
        """From the scorer: per part of speech (the toy's ``noun``, ``color``, ``size``), the words scored
        and the mIoU at each τ against their objects (§4; the nouns' is the paper's measure)."""
        return {
            part: {"words": t.count, "miou": {tau: t.means()[str(tau)] for tau in self.taus}}
            for part, t in self.tallies.get("segmentation", {}).items()
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "tau": self.tau,
            "taus": list(self.taus),
            "scorer": self.scorer,
            "images": self.images,
            "cut_off_words": self.cut_off_words,
            "skipped": self.skipped,
            "tallies": {
                table: {key: [t.count, t.sums] for key, t in rows.items()}
                for table, rows in self.tallies.items()
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunAnalysis:
        result = cls(data["tau"], tuple(data["taus"]), data["scorer"], data["images"], data["cut_off_words"])
        result.skipped = [tuple(s) for s in data["skipped"]]
        for table, rows in data["tallies"].items():
            result.tallies[table] = {key: Tally(count, sums) for key, (count, sums) in rows.items()}
        return result


def analyze_run(
    out_dir: str | os.PathLike,
    *,
    tau: float = 0.4,
    nlp: Any = None,
    taus: Sequence[float] = TAUS,
    workers: int = 1,
    on_image: Callable[[ImageMeasures], object] | None = None,
    share: tuple[int, int] = (0, 1),
    scorer: Scorer | None = None,
) -> RunAnalysis:
    """Every measure over a run's images, reading each maps file once, in index order; memory does not grow
    with the run (each image's measures go to ``on_image``, then only their tallies are kept).

    ``workers`` processes share the images (started afresh, each with one torch thread and a copy of
    ``nlp``; ``on_image`` still sees the images in order, and the result is the same as with one).
    ``share=(rank, world)`` measures only the ``rank``-th of ``world`` consecutive slices of the index, for
    processes that split a run (``daam-widget analyze`` under torchrun); ``RunAnalysis.merge`` adds the
    shares up.

    Parts of speech come from ``nlp`` (a spaCy pipeline you loaded) or else the ``scorer``; pairs from the
    scorer's grammar and from ``nlp``'s parse when given; the segmentation from the scorer, which finds each
    word's object in the generated image (the toy's: ``daam_widget.toy.ToyScorer``). A file that cannot be
    read is left out and listed in ``skipped``.
    """
    from ._run_files import indexed_files

    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a whole number of 1 or more, not {workers!r}")
    rank, world = share
    if not 0 <= rank < world:
        raise ValueError(f"share must be (rank, world) with 0 <= rank < world, not {share!r}")
    files = indexed_files(out_dir)
    files = files[rank * len(files) // world : (rank + 1) * len(files) // world]
    job = (Path(out_dir), tau, tuple(taus), nlp, scorer)
    result = RunAnalysis(tau, tuple(taus), scorer.name if scorer is not None else None)
    if workers == 1 or len(files) < 2:
        _count_in(result, files, (_measure(job, f) for f in files), on_image)
        return result
    import multiprocessing

    # spawned, not forked: a fork of a process whose torch has started its thread pool can hang
    with multiprocessing.get_context("spawn").Pool(workers, _start_worker, (job,)) as pool:
        chunk = max(1, min(64, len(files) // (8 * workers)))
        _count_in(result, files, pool.imap(_measure_in_worker, files, chunksize=chunk), on_image)
    return result


_Job = tuple[Path, float, tuple[float, ...], Any, "Scorer | None"]
_JOB: _Job | None = None
"""What a worker process of ``analyze_run`` measures with."""


def _start_worker(job: _Job) -> None:
    import torch

    global _JOB
    _JOB = job
    torch.set_num_threads(1)


def _measure_in_worker(file: str) -> ImageMeasures | str:
    assert _JOB is not None
    return _measure(_JOB, file)


def _count_in(
    result: RunAnalysis,
    files: list[str],
    measured: Iterable[ImageMeasures | str],
    on_image: Callable[[ImageMeasures], object] | None,
) -> None:
    for file, m in zip(files, measured, strict=True):
        if isinstance(m, str):
            result.skipped.append((file, m))
            continue
        result.add(m)
        if on_image is not None:
            on_image(m)


def _measure(job: _Job, file: str) -> ImageMeasures | str:
    """One image's measures, or why its file cannot be read."""
    out_dir, tau, taus, nlp, scorer = job
    try:
        maps = HeatMaps.load(out_dir / file)
    except (OSError, ValueError) as error:
        return f"{type(error).__name__}: {error}"
    m = ImageMeasures(file)
    if nlp is not None:
        tags = parts_of_speech(maps, nlp)
    else:
        tags = scorer.parts_of_speech(maps) if scorer is not None else [""] * len(maps.words)
    seen = [s.available for s in maps.spans if s.is_word]
    m.cut_off_words = seen.count(False)
    for k, (word, pos) in enumerate(zip(maps.words, tags, strict=True)):
        if seen[k]:
            m.areas.append(WordArea(file, k, word, pos, mask_area(maps, k, tau)))
    if nlp is not None:
        m.parsed_pairs = compare_pairs(maps, _both_seen(maps, dependency_pairs(maps, nlp)), tau)
    if scorer is None:
        return m
    pairs = scorer.dependencies(maps)
    if pairs is not None:
        m.scorer_pairs = compare_pairs(maps, _both_seen(maps, pairs), tau)
    m.word_scores = scorer.word_scores(maps, taus)
    return m


def _both_seen(maps: HeatMaps, pairs: Iterable[tuple[Key, Key, str]]) -> list[tuple[Key, Key, str]]:
    """The pairs whose two words the model saw (a word after the text encoder's window has no map)."""
    return [p for p in pairs if _seen(maps, p[0]) and _seen(maps, p[1])]


def _seen(maps: HeatMaps, key: Key) -> bool:
    try:
        return maps.span(key).available
    except KeyError:  # what the layout says of a word that was cut off
        return False
