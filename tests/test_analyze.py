"""The paper's tables over a run, checked on a hand-made run whose answers are worked out by hand."""

from __future__ import annotations

import csv
import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import daam_widget
from daam_widget import HeatMaps
from daam_widget._analyze_command import main
from daam_widget._run_files import IndexRow, write_index
from daam_widget._words import layout_from_text
from daam_widget.analysis import analyze_run
from daam_widget.toy import ToyScorer, scene
from daam_widget.toy._grammar import PART_OF_SPEECH, caption_dependencies
from daam_widget.toy._model import tokenizer
from daam_widget.toy._world import BACKGROUND, COLORS, WORDS

TOY = ToyScorer()
PROMPT = "a red circle to the left of a blue square"
#          0 1   2      3  4   5    6  7 8    9
RED, BLUE = (slice(8, 24), slice(8, 24)), (slice(8, 24), slice(40, 56))  # 16 x 16 = 256 pixels each


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One image: a red and a blue 16x16 block. 'circle' attends exactly to the red block, 'blue' to the
    blue one; 'square' covers the blue block and 128 pixels right of it (384); 'red' the top half (2048);
    every other word the whole image. Maps are 0/1, so every τ gives the same masks."""
    out = tmp_path_factory.mktemp("tiny-run")
    layout = layout_from_text(PROMPT, tokenizer())
    data = torch.ones(len(layout.used_positions), 64, 64)
    for word, region in [("circle", RED), ("blue", BLUE), ("square", (slice(8, 24), slice(40, 64)))]:
        data[layout.find(word).tokens[0]] = 0
        data[layout.find(word).tokens[0]][region] = 1
    data[layout.find("red").tokens[0]] = 0
    data[layout.find("red").tokens[0], :32] = 1
    image = np.empty((64, 64, 3), np.uint8)
    image[:] = BACKGROUND
    image[RED], image[BLUE] = COLORS["red"], COLORS["blue"]
    (out / "maps").mkdir()
    HeatMaps(data, layout.used_positions, layout, image=image).save(out / "maps" / "0.safetensors")
    write_index(out, [IndexRow(index=0, image=0, prompt=PROMPT, file="maps/0.safetensors")])
    return out


def test_mask_area_per_word_and_part_of_speech(tiny_run):
    measured = []
    result = analyze_run(tiny_run, on_image=measured.append, scorer=TOY)
    areas = {(a.word_index, a.word): a.area for a in measured[0].areas}
    assert areas[2, "circle"] == 1 / 16 and areas[9, "square"] == 3 / 32
    assert areas[1, "red"] == 1 / 2 and areas[8, "blue"] == 1 / 16 and areas[5, "left"] == 1.0
    assert result.area_by("pos") == {
        "ADJ": {"words": 2, "area": pytest.approx((1 / 2 + 1 / 16) / 2)},
        "ADP": {"words": 2, "area": 1.0},
        "DET": {"words": 3, "area": 1.0},
        "NOUN": {"words": 3, "area": pytest.approx((1 / 16 + 1 + 3 / 32) / 3)},
    }
    assert result.area_by("word")["a"] == {"words": 2, "area": 1.0}


def test_pair_measures_per_relation_of_the_toys_own_parse(tiny_run):
    table = analyze_run(tiny_run, scorer=TOY).relations("toy")
    # amod: (circle, red): IoU 256/2048, circle in red 1, red in circle 1/8; (square, blue): 256/384, 2/3, 1
    assert table["amod"] == pytest.approx(
        {
            "pairs": 2,
            "iou": (1 / 8 + 2 / 3) / 2,
            "head_in_dependent": (1 + 2 / 3) / 2,
            "dependent_in_head": 9 / 16,
        }
    )
    # pobj: (to, left) both whole: 1, 1, 1; (of, square): IoU 384/4096, of in square 384/4096, square in of 1
    assert table["pobj"] == pytest.approx(
        {
            "pairs": 2,
            "iou": (1 + 3 / 32) / 2,
            "head_in_dependent": (1 + 3 / 32) / 2,
            "dependent_in_head": 1.0,
        }
    )
    assert (
        table["det"]["pairs"] == 3
        and table["prep"]["pairs"] == 2
        and set(table) == {"amod", "det", "pobj", "prep"}
    )


def test_toy_segmentation_scores_nouns_against_the_objects_in_the_image(tiny_run):
    seg = analyze_run(tiny_run, taus=(0.2, 0.4, 0.6), scorer=TOY).segmentation()
    # circle = the red block (IoU 1); square vs the blue block: 256 / 384; red: 256 / 2048; blue: 1
    assert seg["noun"] == {"words": 2, "miou": pytest.approx({0.2: 5 / 6, 0.4: 5 / 6, 0.6: 5 / 6})}
    assert seg["color"]["miou"][0.4] == pytest.approx((1 / 8 + 1) / 2) and "size" not in seg


def test_a_parser_given_as_nlp_supplies_parts_of_speech_and_pairs(tiny_run):
    """A stand-in for a spaCy pipeline, returning the toy's own parse: the parsed table equals the toy's."""
    words = PROMPT.split()
    heads = {d: h for h, d, _ in caption_dependencies(words)}
    labels = {d: r for _, d, r in caption_dependencies(words)}
    starts = [m.start() for m in re.finditer(r"\S+", PROMPT)]

    def nlp(text):
        assert text == PROMPT
        tokens = [
            SimpleNamespace(i=i, idx=starts[i], dep_=labels.get(i, "ROOT"), pos_="X")
            for i in range(len(words))
        ]
        for i, t in enumerate(tokens):
            t.head = tokens[heads.get(i, i)]
        return tokens

    measured = []
    result = analyze_run(tiny_run, nlp=nlp, on_image=measured.append, scorer=TOY)
    (image,) = measured
    assert sorted(image.parsed_pairs, key=str) == sorted(image.scorer_pairs, key=str)
    assert len(image.parsed_pairs) == 9 and result.relations("spacy") == result.relations("toy")
    assert list(result.area_by("pos")) == ["X"]


def test_every_caption_of_the_world_parses_into_one_tree():
    assert set(PART_OF_SPEECH) == set(WORDS)
    for seed in range(300):
        words = re.findall(r"\w+", scene(seed).caption)
        pairs = caption_dependencies(words)
        assert pairs is not None, scene(seed).caption
        dependents = [d for _, d, _ in pairs]
        assert sorted(dependents) == sorted(set(range(len(words))) - {_root(pairs, len(words))})
    assert caption_dependencies("a red dog".split()) is None


def _root(pairs, n):
    return ({h for h, _, _ in pairs} - {d for _, d, _ in pairs}).pop() if pairs else 0


def test_the_command_writes_every_table_and_figure_of_a_toy_run(tmp_path, capsys):
    from daam_widget.toy import load_pipeline

    pipe = load_pipeline()
    prompts = [scene(1).caption, scene(2).caption]
    rows = daam_widget.run(pipe, prompts, tmp_path / "run", steps=3, progress=False)
    assert main([str(tmp_path / "run")]) == 0
    out = tmp_path / "run" / "analysis"
    names = {p.name for p in out.iterdir()}
    for table in ("mask_area_by_pos", "relations_toy", "segmentation_toy"):
        assert {f"{table}.csv", f"{table}.png"} <= names
    with open(out / "words.csv") as f:
        assert len(list(csv.DictReader(f))) == sum(
            len(HeatMaps.load(tmp_path / "run" / r.file)) for r in rows
        )
    assert "2 images; mean mask area by part of speech" in capsys.readouterr().out


def test_nlp_without_spacy_installed_says_what_to_install_and_downloads_nothing(tiny_run):
    import importlib.util

    if importlib.util.find_spec("spacy") is not None:
        pytest.skip("spaCy is installed here")
    with pytest.raises(SystemExit, match="pip install spacy"):
        main([str(tiny_run), "--nlp", "en_core_web_sm"])


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """Seven of the toy's captions at 2 steps: words, pairs and objects to score in each."""
    from daam_widget.toy import load_pipeline

    out = tmp_path_factory.mktemp("toy-run")
    daam_widget.run(load_pipeline(), [scene(k).caption for k in range(7)], out, steps=2, progress=False)
    return out


def _same_tables(a, b):
    assert (a.images, a.cut_off_words, a.skipped) == (b.images, b.cut_off_words, b.skipped)
    assert {t: set(rows) for t, rows in a.tallies.items()} == {t: set(rows) for t, rows in b.tallies.items()}
    for table, rows in a.tallies.items():
        for key, tally in rows.items():
            other = b.tallies[table][key]
            assert tally.count == other.count and tally.sums == pytest.approx(other.sums, rel=1e-12), (
                table,
                key,
            )


def test_shares_of_a_run_add_up_to_the_whole_in_index_order(toy_run):
    seen = []
    whole = analyze_run(toy_run, on_image=seen.append, scorer=TOY)
    assert whole.images == 7 and whole.relations("toy") and whole.segmentation()["noun"]["words"] > 0
    for world in (2, 3):
        parts, order = [], []
        for rank in range(world):
            parts.append(analyze_run(toy_run, share=(rank, world), on_image=order.append, scorer=TOY))
        assert [m.file for m in order] == [m.file for m in seen]  # consecutive slices, in index order
        merged = parts[0]
        for part in parts[1:]:
            merged.merge(part)
        _same_tables(merged, whole)
    with pytest.raises(ValueError, match=r"share must be \(rank, world\) with 0 <= rank < world"):
        analyze_run(toy_run, share=(2, 2))


def test_what_analyze_keeps_does_not_grow_with_the_images(toy_run, tmp_path):
    """Ten times the images (the same seven files, indexed ten times over): the same tallies, each counting
    ten times as much, and nothing per image kept."""
    rows = daam_widget.read_index(toy_run)
    (tmp_path / "maps").symlink_to(toy_run / "maps")
    many = [IndexRow(index=k, image=0, prompt=rows[k % 7].prompt, file=rows[k % 7].file) for k in range(70)]
    write_index(tmp_path, many)
    few, lots = analyze_run(toy_run, scorer=TOY), analyze_run(tmp_path, scorer=TOY)
    assert lots.images == 10 * few.images and vars(lots).keys() == vars(few).keys()
    assert {t: set(r) for t, r in lots.tallies.items()} == {t: set(r) for t, r in few.tallies.items()}
    for table, rows_of in few.tallies.items():
        for key, tally in rows_of.items():
            assert lots.tallies[table][key].count == 10 * tally.count
            assert lots.tallies[table][key].sums == pytest.approx({k: 10 * v for k, v in tally.sums.items()})


def test_the_command_split_between_two_ranks_writes_what_one_process_writes(
    toy_run, tmp_path, monkeypatch, capsys
):
    assert main([str(toy_run), "--out", str(tmp_path / "one")]) == 0
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert main([str(toy_run), "--out", str(tmp_path / "two")]) == 0
    assert "rank 1/2: share measured" in capsys.readouterr().out
    assert not (tmp_path / "two" / "words.csv").exists(), "a share alone writes no table"
    monkeypatch.setenv("RANK", "0")
    assert main([str(toy_run), "--out", str(tmp_path / "two")]) == 0
    one, two = (
        sorted(p.name for p in (tmp_path / "one").iterdir()),
        sorted(p.name for p in (tmp_path / "two").iterdir()),
    )
    assert one == two and "pairs_toy.csv" in one and "segmentation_toy.csv" in one, "and no share is left"
    for name in ("words.csv", "pairs_toy.csv"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    for name in one:
        if name.endswith(".csv"):
            a, b = (list(csv.reader(open(tmp_path / d / name))) for d in ("one", "two"))
            assert len(a) == len(b) and all(
                x == y or float(x) == pytest.approx(float(y), rel=1e-5)
                for r, s in zip(a, b, strict=True)
                for x, y in zip(r, s, strict=True)
            ), name


def test_analysis_needs_no_toy_and_the_command_uses_the_toys_scorer_only_for_its_runs(toy_run, tmp_path):
    import subprocess
    import sys

    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, daam_widget.analysis; print('daam_widget.toy' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "False", "the analyses import nothing of the toy"
    plain = analyze_run(toy_run)
    assert plain.scorer is None and plain.segmentation() == {} and list(plain.area_by("pos")) == [""]
    assert main([str(toy_run), "--out", str(tmp_path / "none"), "--scorer", "none"]) == 0
    assert sorted(p.name for p in (tmp_path / "none").glob("*.csv")) == [
        "mask_area_by_pos.csv",
        "mask_area_by_word.csv",
        "words.csv",
    ]
    assert main([str(toy_run), "--out", str(tmp_path / "toy")]) == 0  # a run of ToyPipeline: its scorer
    assert (tmp_path / "toy" / "segmentation_toy.csv").exists() and (
        tmp_path / "toy" / "pairs_toy.csv"
    ).exists()
