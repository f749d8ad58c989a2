"""``DaamGallery``: a run's thumbnails a page at a time, filtered by word, opening an image's maps."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

import daam_widget
from daam_widget import DaamGallery, DaamWidget, HeatMaps

PROMPTS = ["a red circle", "a blue square and a red star", "a photo of a green circle"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from daam_widget.toy import load_pipeline

    out = tmp_path_factory.mktemp("gallery-run")
    daam_widget.run(load_pipeline(), PROMPTS, out, steps=2, progress=False)
    return out


def pngs(grid) -> list[np.ndarray]:
    data, offset, images = bytes(grid.thumbnails), 0, []
    for item in grid.items:
        images.append(np.asarray(Image.open(io.BytesIO(data[offset : offset + item["size"]]))))
        offset += item["size"]
    assert offset == len(data)
    return images


def test_a_page_shows_each_image_with_its_prompt(run_dir):
    g = DaamGallery(run_dir, page_size=2, thumbnail_size=64)
    assert (g.grid.total, g.grid.matches, g.grid.pages, g.grid.page) == (3, 3, 2, 0)
    assert [i["prompt"] for i in g.grid.items] == PROMPTS[:2]
    for item, thumbnail in zip(g.grid.items, pngs(g.grid), strict=True):
        assert np.array_equal(thumbnail, g.maps(item["row"]).image)  # 64 px toy images are shown as they are
    g.grid.page = 1
    assert [i["prompt"] for i in g.grid.items] == PROMPTS[2:] and len(pngs(g.grid)) == 1


def test_the_filter_keeps_prompts_holding_every_word(run_dir):
    g = DaamGallery(run_dir, page_size=2)
    g.grid.page = 1
    assert g.filter("RED") == [0, 1] and g.grid.page == 0 and g.grid.matches == 2
    assert g.filter("circle red") == [0]
    assert g.filter("re") == [] and g.grid.items == [] and g.grid.pages == 1
    assert g.filter("") == [0, 1, 2]


def test_a_click_opens_the_image_in_a_daam_widget_below_the_grid(run_dir):
    g = DaamGallery(run_dir)
    g.grid.selected = 1  # what a click on the second thumbnail sends
    assert isinstance(g.widget, DaamWidget) and g.children == (g.grid, g.widget)
    saved = HeatMaps.load(run_dir / g.rows[1].file)
    assert g.widget.prompt == PROMPTS[1] and list(g.widget.words) == list(saved.words)
    assert g.show(2).prompt == PROMPTS[2]
    g.grid.selected = None
    assert g.children == (g.grid,) and g.widget is None
    with pytest.raises(IndexError, match="not in the run's index"):
        g.show(3)


def test_a_run_of_ten_thousand_images_opens_at_once_reading_one_page(run_dir, tmp_path):
    (tmp_path / "maps").symlink_to(run_dir / "maps")
    rows = [json.loads(line) for line in (run_dir / "index.jsonl").read_text().splitlines()]
    big = [
        {**rows[k % 3], "index": k, "line": k + 1, "prompt": f"{rows[k % 3]['prompt']} {k}"}
        for k in range(10_000)
    ]
    (tmp_path / "index.jsonl").write_text("".join(json.dumps(r) + "\n" for r in big))
    g = DaamGallery(tmp_path, page_size=24)
    assert g.grid.total == 10_000 and g.grid.pages == 417 and len(g.grid.items) == 24
    assert len(g._thumbnails) == 24  # only the shown page's files were read
    assert g.filter("9999") == [9999]


def test_a_folder_without_an_index_says_how_to_finish_the_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a run folder, or a run that has written no image"):
        DaamGallery(tmp_path)


def test_a_damaged_or_missing_file_is_named_and_left_out_by_the_gallery_and_analyze(
    run_dir, tmp_path, capsys
):
    import shutil

    from daam_widget._analyze_command import main
    from daam_widget.analysis import analyze_run

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    rows = daam_widget.read_index(copy)
    cut = copy / rows[0].file
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    (copy / rows[2].file).unlink()
    g = DaamGallery(copy)
    assert [i["size"] > 0 for i in g.grid.items] == [False, True, False]
    assert g.grid.error.startswith("2 files of this page could not be read: " + rows[0].file)
    with pytest.raises(ValueError, match=r"row 0: .* is not a readable safetensors file"):
        g.show(0)
    assert isinstance(g.show(1), DaamWidget)
    result = analyze_run(copy)
    assert result.images == 1 and [f for f, _ in result.skipped] == [rows[0].file, rows[2].file]
    assert main([str(copy)]) == 0
    out, err = capsys.readouterr()
    assert "2 files could not be read and were left out" in out and f"skipped {rows[2].file}" in err
    assert (copy / "analysis" / "skipped.csv").read_text().count("\n") == 3


def test_a_prompt_longer_than_the_window_is_analysed_with_its_cut_off_words_counted(tmp_path):
    from daam_widget.analysis import analyze_run
    from daam_widget.toy import load_pipeline

    long = " ".join(["a small red circle and a big blue square"] * 5)
    daam_widget.run(load_pipeline(), [long, "a red circle"], tmp_path, steps=2, progress=False)
    result = analyze_run(tmp_path)
    maps = HeatMaps.load(tmp_path / daam_widget._run_files.read_index(tmp_path)[0].file)
    unseen = sum(not s.available for s in maps.spans if s.is_word)
    assert unseen > 0 and result.cut_off_words == unseen and result.images == 2


def test_analyze_with_two_worker_processes_gives_what_one_gives(run_dir):
    from daam_widget.analysis import analyze_run

    one, two = analyze_run(run_dir), analyze_run(run_dir, workers=2)
    assert one.images == 3 and one == two
    with pytest.raises(ValueError, match="workers must be a whole number of 1 or more, not 0"):
        analyze_run(run_dir, workers=0)
