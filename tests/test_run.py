"""DAAM over a prompt file: the maps equal a direct trace's, resumable, split by rank, safe when killed."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import daam_widget
from daam_widget import HeatMaps, StepMaps, trace
from daam_widget._batch import PromptFailed
from daam_widget._prompts import PromptFileError, read_prompts
from daam_widget._run_files import FolderInUse, read_index
from daam_widget.cli import main as cli_main

PROMPTS = [
    "a red circle",
    "a blue square to the left of a green star",
    "a photo of a big yellow triangle",
    "a purple diamond and an orange circle",
    "a small green square",
]
STEPS = 3


@pytest.fixture(scope="module")
def pipe():
    from daam_widget.toy import load_pipeline

    pipe = load_pipeline()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def maps_files(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "maps").iterdir() if not p.name.startswith("."))


def close_maps(a: HeatMaps, b: HeatMaps) -> bool:
    """The same positions' maps, up to a file's float16 (each within 2e-3 of its peak)."""
    error = (a.maps - b.maps).abs().flatten(1).amax(1)
    return a.positions == b.positions and bool((error <= 2e-3 * b.maps.flatten(1).amax(1)).all())


def same_maps(a: HeatMaps, b: HeatMaps) -> bool:
    return close_maps(a, b) and a.words == b.words and np.array_equal(a.image, b.image)


def test_run_maps_equal_a_direct_trace_of_each_prompt_with_its_seed(pipe, tmp_path):
    rows = daam_widget.run(
        pipe, PROMPTS[:2], tmp_path, seed=10, steps=STEPS, images_per_prompt=2, progress=False
    )
    assert [(r.index, r.image, r.seed) for r in rows] == [
        (0, 0, 10),
        (0, 1, 10),
        (1, 0, 11),
        (1, 1, 11),
    ]
    for k, prompt in enumerate(PROMPTS[:2]):
        g = torch.Generator().manual_seed(10 + k)
        with trace(pipe) as tc:
            pipe(prompt, num_images_per_prompt=2, generator=[g, g], num_inference_steps=STEPS)
        for j in range(2):
            (row,) = [r for r in rows if (r.index, r.image) == (k, j)]
            saved = HeatMaps.load(tmp_path / row.file)
            assert same_maps(saved, tc.heat_maps(j, prompt=prompt))
            assert saved.prompt == prompt and saved.settings["seed"] == 10 + k
    assert read_index(tmp_path) == rows


def test_the_split_by_rank_changes_no_file_and_no_map(pipe, tmp_path):
    for batch_size in (1, 2):
        whole = daam_widget.run(
            pipe, PROMPTS, tmp_path / f"whole{batch_size}", steps=STEPS, batch_size=batch_size
        )
        for rank in (1, 0):
            split = daam_widget.run(
                pipe,
                PROMPTS,
                tmp_path / f"split{batch_size}",
                steps=STEPS,
                batch_size=batch_size,
                rank=rank,
                world_size=2,
                progress=False,
            )
        assert len(whole) == len(PROMPTS) and split == whole
        assert maps_files(tmp_path / f"whole{batch_size}") == maps_files(tmp_path / f"split{batch_size}")
        for row in whole:
            a = HeatMaps.load(tmp_path / f"whole{batch_size}" / row.file)
            b = HeatMaps.load(tmp_path / f"split{batch_size}" / row.file)
            assert same_maps(a, b) and a.settings == b.settings


def test_the_batch_size_changes_no_noise_only_rounding(pipe, tmp_path):
    one = daam_widget.run(pipe, PROMPTS, tmp_path / "one", steps=STEPS, progress=False)
    three = daam_widget.run(pipe, PROMPTS, tmp_path / "three", steps=STEPS, batch_size=3, progress=False)
    assert one == three
    for row in one:
        a, b = HeatMaps.load(tmp_path / "one" / row.file), HeatMaps.load(tmp_path / "three" / row.file)
        assert close_maps(a, b), "float32's rounding, then the file's float16"
        assert np.abs(a.image.astype(int) - b.image).max() <= 1


def test_rerun_skips_what_is_done_and_does_an_edited_line_again(pipe, tmp_path, capsys):
    first = daam_widget.run(pipe, PROMPTS[:3], tmp_path, steps=STEPS)
    times = {f: (tmp_path / "maps" / f).stat().st_mtime_ns for f in maps_files(tmp_path)}
    again = daam_widget.run(pipe, PROMPTS[:3], tmp_path, steps=STEPS)
    assert again == first and "wrote 0 images" in capsys.readouterr().err
    assert {f: (tmp_path / "maps" / f).stat().st_mtime_ns for f in maps_files(tmp_path)} == times
    edited = daam_widget.run(pipe, [PROMPTS[0], PROMPTS[3], PROMPTS[2]], tmp_path, steps=STEPS)
    assert "wrote 1 images" in capsys.readouterr().err
    assert [r.prompt for r in edited] == [PROMPTS[0], PROMPTS[3], PROMPTS[2]]
    assert edited[0] == first[0] and edited[2] == first[2] and edited[1].file != first[1].file


def test_a_misspelt_pipeline_keyword_is_refused_with_the_close_match(pipe, tmp_path):
    with pytest.raises(TypeError, match="'guidance_scal' is not an argument of ToyPipeline; did you mean"):
        daam_widget.run(pipe, PROMPTS[:1], tmp_path, guidance_scal=2.0)


def test_a_run_with_other_settings_is_refused_in_the_same_folder(pipe, tmp_path):
    daam_widget.run(pipe, PROMPTS[:1], tmp_path, steps=STEPS, progress=False)
    with pytest.raises(ValueError, match=r"other settings \(call: .*num_inference_steps.*2"):
        daam_widget.run(pipe, PROMPTS[:1], tmp_path, steps=2, progress=False)


def test_bad_lines_are_reported_with_their_numbers_and_skipped(pipe, tmp_path, capsys):
    path = tmp_path / "prompts.jsonl"
    lines = [
        {"prompt": "a red circle", "seed": 3},
        "not json",
        {"prompt": "a blue star", "guidance_scal": 2.0},
        {"seed": 1},
        {"prompt": "a green star", "generator": 1},
        "",
        {"prompt": "a red star", "negative_prompt": "a blue star", "guidance_scale": 5.0},
    ]
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    good, bad = read_prompts(path, ["guidance_scale", "num_inference_steps"])
    assert [(g.index, g.line, g.prompt, g.seed) for g in good] == [
        (0, 1, "a red circle", 3),
        (6, 7, "a red star", None),
    ]
    assert good[1].negative_prompt == "a blue star" and good[1].kwargs == {"guidance_scale": 5.0}
    assert [b.line for b in bad] == [2, 3, 4, 5]
    assert "not JSON" in bad[0].reason
    assert "unknown keyword 'guidance_scal' (did you mean 'guidance_scale'?)" in bad[1].reason
    assert "no prompt" in bad[2].reason and "set by the run" in bad[3].reason

    rows = daam_widget.run(pipe, path, tmp_path / "out", steps=STEPS)
    assert [(r.line, r.seed) for r in rows] == [(1, 3), (7, 6)]
    assert rows[1].kwargs["guidance_scale"] == 5.0 and rows[1].negative_prompt == "a blue star"
    err = capsys.readouterr().err
    assert all(f"skipped line {n}:" in err for n in (2, 3, 4, 5))
    with pytest.raises(PromptFileError, match="line 2: not JSON"):
        daam_widget.run(pipe, path, tmp_path / "out", steps=STEPS, strict=True)
    assert read_index(tmp_path / "out") == rows and len(maps_files(tmp_path / "out")) == 2


def test_a_run_stopped_while_writing_leaves_no_file_under_its_name_and_a_rerun_completes(
    pipe, tmp_path, monkeypatch
):
    """Death in the middle of a write, made certain: the third file's writer dies after half its bytes."""
    from daam_widget import _files

    save, calls = _files.save_file, []

    def dies_on_the_third(tensors, path, metadata=None):
        calls.append(path)
        save(tensors, path, metadata=metadata)
        if len(calls) == 3:
            with open(path, "r+b") as f:
                f.truncate(os.path.getsize(path) // 2)
            raise KeyboardInterrupt

    monkeypatch.setattr(_files, "save_file", dies_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        daam_widget.run(pipe, PROMPTS, tmp_path, steps=STEPS, progress=False)
    assert len(maps_files(tmp_path)) == 2 and not (tmp_path / "index.jsonl").exists()
    assert [r.index for r in read_index(tmp_path)] == [0, 1], "the index holds what was done"
    (partial,) = [p for p in (tmp_path / "maps").iterdir() if p.name.startswith(".")]
    assert partial.name.endswith(".tmp") and partial.name[1:-4] not in maps_files(tmp_path)

    monkeypatch.setattr(_files, "save_file", save)
    rows = daam_widget.run(pipe, PROMPTS, tmp_path, steps=STEPS, progress=False)
    assert [r.index for r in rows] == list(range(len(PROMPTS)))
    assert sorted(p.name for p in (tmp_path / "maps").iterdir()) == maps_files(tmp_path)  # the .tmp is gone
    assert all(HeatMaps.load(tmp_path / r.file).prompt == r.prompt for r in rows)


def test_per_step_maps_sum_to_the_image_maps(pipe, tmp_path):

    (row,) = daam_widget.run(pipe, PROMPTS[1:2], tmp_path, steps=STEPS, per_step=True, progress=False)
    steps = StepMaps.load(tmp_path / row.steps_file)
    maps = HeatMaps.load(tmp_path / row.file)
    assert steps.num_steps == STEPS and steps.words == maps.words
    total = steps.total()
    for k, word in enumerate(maps.words):
        assert torch.allclose(total[k], maps.tensor(k), rtol=1e-2, atol=1e-2 * float(maps.tensor(k).max())), (
            word
        )


def test_daam_widget_run_is_the_function_and_the_command_is_daam_widget_run(pipe, tmp_path, capsys):
    from daam_widget.cli import main

    assert callable(daam_widget.run)
    with pytest.raises(ModuleNotFoundError):  # no module of the function's name
        importlib.import_module("daam_widget.run")
    assert main(["--help"]) == 0 and "daam-widget {run,analyze,gallery}" in capsys.readouterr().err
    assert main(["bogus"]) == 2 and "(not 'bogus')" in capsys.readouterr().err
    assert len(daam_widget.run(pipe, PROMPTS[:1], tmp_path, steps=STEPS, progress=False)) == 1
    assert main(["gallery", str(tmp_path)]) == 0
    page = (tmp_path / "gallery.html").read_text()
    assert page.count("<figure>") == 1 and PROMPTS[0] in page and "data:image/png;base64," in page


def test_the_tracers_options_reach_the_trace(pipe, tmp_path):
    (row,) = daam_widget.run(pipe, PROMPTS[1:2], tmp_path, seed=4, steps=STEPS, layers=["down_blocks"])
    with trace(pipe, layers=["down_blocks"]) as tc:
        pipe(PROMPTS[1], generator=torch.Generator().manual_seed(4), num_inference_steps=STEPS)
    saved = HeatMaps.load(tmp_path / row.file)
    assert same_maps(saved, tc.heat_maps(0, prompt=PROMPTS[1])) and row.settings["layers"] == ["down_blocks"]
    with trace(pipe) as everything:
        pipe(PROMPTS[1], generator=torch.Generator().manual_seed(4), num_inference_steps=STEPS)
    assert not torch.equal(saved.maps, everything.heat_maps(0).maps)


def test_the_command_loads_a_pipeline_folder_and_stops_at_a_bad_line_under_strict(pipe, tmp_path, capsys):
    from daam_widget.toy._model import WEIGHTS

    def main(argv):
        return cli_main(["run", *argv])

    prompts = tmp_path / "prompts.txt"
    prompts.write_text(PROMPTS[0] + "\n")
    out = ["--out", str(tmp_path / "out"), "--steps", str(STEPS), "--no-progress"]
    assert main([str(prompts), "--model", str(WEIGHTS), *out]) == 0  # a folder, through from_pretrained
    (row,) = read_index(tmp_path / "out")
    assert row.settings["model"] == str(WEIGHTS) and row.settings["pipeline"] == "StableDiffusionPipeline"
    direct = daam_widget.run(pipe, [PROMPTS[0]], tmp_path / "direct", steps=STEPS, progress=False)
    assert same_maps(
        HeatMaps.load(tmp_path / "out" / row.file), HeatMaps.load(tmp_path / "direct" / direct[0].file)
    )

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a red circle"}\n{"prompt": "a red star", "steps": 3}\n')
    assert main([str(bad), "--strict", *out[:1], str(tmp_path / "strict"), *out[2:]]) == 2
    err = capsys.readouterr().err
    assert "error: bad prompt line 2: unknown keyword 'steps'" in err and "--strict" in err
    assert not (tmp_path / "strict" / "maps").exists()  # stopped before generating anything


@pytest.mark.parametrize("family", ["flux", "sd3", "pixart"])
def test_a_run_on_a_transformer_pipeline_gives_the_maps_of_a_direct_trace(family, tmp_path):
    from daam_widget import testing

    make = {"flux": testing.flux_pipeline, "sd3": testing.sd3_pipeline, "pixart": testing.pixart_pipeline}
    pipe = make[family]()
    pipe.set_progress_bar_config(disable=True)
    extra = {"max_sequence_length": 24} if family == "flux" else {}
    prompts = ["a red dog", "a cat on a hat"]
    rows = daam_widget.run(
        pipe,
        prompts,
        tmp_path,
        steps=2,
        size=(32, 32),
        images_per_prompt=2,
        softmax_over="all",
        progress=False,
        **extra,
    )
    assert [(r.index, r.image) for r in rows] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    g = torch.Generator().manual_seed(1)
    with trace(pipe, softmax_over="all") as tc:
        pipe(
            prompts[1],
            num_inference_steps=2,
            height=32,
            width=32,
            num_images_per_prompt=2,
            generator=[g, g],
            **extra,
        )
    for j in range(2):
        assert same_maps(HeatMaps.load(tmp_path / rows[2 + j].file), tc.heat_maps(j, prompt=prompts[1]))


def cli(*args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "daam_widget",
        "run",
        *args,
        "--steps",
        str(STEPS),
        "--threads",
        "1",
        "--no-progress",
    ]


def run_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    return env | {"OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def prompt_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("prompts") / "prompts.txt"
    path.write_text("\n".join(PROMPTS * 2) + "\n")
    return path


def test_torchrun_with_two_processes_writes_the_same_files_and_maps_as_one(prompt_file, tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    assert torchrun, "torchrun comes with torch"
    subprocess.run(cli(str(prompt_file), "--out", str(tmp_path / "one")), check=True, env=run_env())
    out = tmp_path / "two"
    subprocess.run(
        [
            torchrun,
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            *cli(str(prompt_file), "--out", str(out))[2:],
        ],
        check=True,
        env=run_env(),
    )
    one, two = read_index(tmp_path / "one"), read_index(tmp_path / "two")
    assert one == two and len(one) == 2 * len(PROMPTS)
    assert [r.index for r in one] == list(range(2 * len(PROMPTS)))
    assert (
        maps_files(tmp_path / "one") == maps_files(tmp_path / "two") == sorted(Path(r.file).name for r in one)
    )
    for row in one:
        a, b = HeatMaps.load(tmp_path / "one" / row.file), HeatMaps.load(tmp_path / "two" / row.file)
        assert same_maps(a, b) and a.settings == b.settings

    # and the analysis, split the same way, writes the tables that one process writes
    analyze = [sys.executable, "-m", "daam_widget", "analyze"]
    subprocess.run([*analyze, str(tmp_path / "one")], check=True, env=run_env(), capture_output=True)
    done = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node", "2", "-m", *analyze[2:], str(out)],
        check=True,
        env=run_env(),
        capture_output=True,
        text=True,
    )
    assert "share measured" in done.stdout and f"{len(one)} images;" in done.stdout
    tables = sorted(p.name for p in (tmp_path / "one" / "analysis").glob("*.csv"))
    assert tables == sorted(p.name for p in (out / "analysis").glob("*.csv")) and "words.csv" in tables
    for name in ("words.csv", "pairs_toy.csv", "mask_area_by_word.csv"):
        assert (tmp_path / "one" / "analysis" / name).read_text() == (out / "analysis" / name).read_text()


@pytest.mark.slow
def test_accelerate_launch_splits_the_run_as_torchrun_does(prompt_file, tmp_path):
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    assert accelerate, "accelerate is a dependency"
    command = [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1"]
    command += ["--mixed_precision", "no", "--dynamo_backend", "no", "-m"]
    subprocess.run(cli(str(prompt_file), "--out", str(tmp_path / "one")), check=True, env=run_env())
    done = subprocess.run(
        [*command, *cli(str(prompt_file), "--out", str(tmp_path / "two"))[2:]],
        check=True,
        env=run_env(),
        capture_output=True,
        text=True,
    )
    assert "rank 0/2:" in done.stderr and "rank 1/2:" in done.stderr
    one, two = read_index(tmp_path / "one"), read_index(tmp_path / "two")
    assert one == two and len(one) == 2 * len(PROMPTS)
    for row in one:
        assert same_maps(
            HeatMaps.load(tmp_path / "one" / row.file), HeatMaps.load(tmp_path / "two" / row.file)
        )


def test_a_run_killed_mid_way_and_rerun_completes_with_nothing_duplicated_or_corrupt(prompt_file, tmp_path):
    out = tmp_path / "killed"
    process = subprocess.Popen(
        cli(str(prompt_file), "--out", str(out)), env=run_env(), stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if (out / "maps").is_dir() and len(maps_files(out)) >= 3:
            break
        time.sleep(0.01)
    assert process.poll() is None, "the run ended before it could be killed: give it more prompts"
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = maps_files(out)
    assert 3 <= len(done) < 2 * len(PROMPTS)
    for name in done:  # every file under its real name is whole
        HeatMaps.load(out / "maps" / name)
    assert not (out / "index.jsonl").exists()
    indexed = [Path(r.file).name for r in read_index(out)]
    assert set(indexed) <= set(done) and len(indexed) >= len(done) - 1, (
        "the index is current, but for a write"
    )

    subprocess.run(
        cli(str(prompt_file), "--out", str(out)), check=True, env=run_env(), stderr=subprocess.DEVNULL
    )
    rows = read_index(out)
    assert [(r.index, r.image) for r in rows] == [(k, 0) for k in range(2 * len(PROMPTS))]
    assert maps_files(out) == sorted(Path(r.file).name for r in rows)
    assert [p.name for p in (out / "maps").iterdir() if p.name.startswith(".")] == []
    for row in rows:
        assert HeatMaps.load(out / row.file).prompt == row.prompt


def test_the_pipelines_own_progress_bar_setting_is_left_as_it_was(tmp_path, monkeypatch):
    from daam_widget import _files
    from daam_widget.toy import load_pipeline

    pipe = load_pipeline()
    pipe.set_progress_bar_config(desc="mine", leave=False)
    daam_widget.run(pipe, PROMPTS[:1], tmp_path / "a", steps=STEPS, progress=False)
    assert pipe._progress_bar_config == {"desc": "mine", "leave": False}

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(_files, "save_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        daam_widget.run(pipe, PROMPTS[:1], tmp_path / "b", steps=STEPS, progress=False)
    assert pipe._progress_bar_config == {"desc": "mine", "leave": False}


FAILING = [
    {"prompt": "a red circle"},
    {"prompt": "a blue square", "guidance_scale": "high"},
    {"prompt": "a green star", "num_inference_steps": 0},
    {"prompt": "a yellow triangle", "num_inference_steps": -1},
    {"prompt": "a purple \ud800 diamond"},
    {"prompt": "an orange circle", "seed": 2**70},
    {"prompt": "a small green square"},
]


def test_a_line_that_fails_in_the_pipeline_is_reported_with_its_number_and_skipped_and_a_rerun_goes_on(
    pipe, tmp_path, capsys
):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps(entry) + "\n" for entry in FAILING))
    rows = daam_widget.run(pipe, prompts, tmp_path / "out", steps=STEPS, batch_size=2, progress=False)
    assert [r.line for r in rows] == [1, 7], "the good lines, though they shared a batch with a bad one"
    err = capsys.readouterr().err
    assert "skipped line 6:" in err and "2**64 - 1" in err, "a seed no generator takes is a bad line"
    for line in (2, 3, 4, 5):
        assert f"skipped line {line} (" in err, err
    assert "skipped line 4 ('a yellow triangle') failed: IndexError: " in err and "no denoising step" in err
    again = daam_widget.run(pipe, prompts, tmp_path / "out", steps=STEPS, progress=False, summary=True)
    assert again == rows and "4 lines failed (2, 3, 4, 5)" in capsys.readouterr().err
    prompts.write_text("".join(json.dumps(entry) + "\n" for entry in FAILING[:5]))
    with pytest.raises(PromptFailed, match=r"line 2 \('a blue square'\) failed: .*without --strict"):
        daam_widget.run(pipe, prompts, tmp_path / "strict", steps=STEPS, strict=True, progress=False)


def test_settings_bind_a_folder_only_once_it_holds_an_image(pipe, tmp_path):
    with pytest.raises(ValueError, match="matches no cross-attention layer"):
        daam_widget.run(pipe, PROMPTS[:1], tmp_path, steps=STEPS, layers=["bogus"], progress=False)
    daam_widget.run(pipe, PROMPTS[:1], tmp_path, steps=STEPS, size=(60, 60), progress=False, summary=False)
    assert not maps_files(tmp_path), "every call failed: nothing to protect"
    rows = daam_widget.run(pipe, PROMPTS[:1], tmp_path, steps=STEPS, progress=False)
    assert len(rows) == 1, "the corrected command runs in the same folder"
    with pytest.raises(ValueError, match=r"call: .* or delete .*run.json and .*maps to start afresh"):
        daam_widget.run(pipe, PROMPTS[:1], tmp_path, steps=STEPS + 1, progress=False)


HOLD = """
import sys, time
from pathlib import Path
from daam_widget._run_files import holding_rank
with holding_rank(Path(sys.argv[1]), 0, 1):
    print("holding", flush=True)
    time.sleep(600)
"""


def test_a_second_launch_on_a_folder_in_use_is_refused_and_a_killed_ones_lock_does_not_stay(pipe, tmp_path):
    (tmp_path / "maps").mkdir()
    other = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "holding"
        with pytest.raises(FolderInUse, match=rf"in use by another run: process {other.pid} on"):
            daam_widget.run(pipe, PROMPTS[:1], tmp_path, steps=STEPS, progress=False)
    finally:
        other.kill()
        other.wait()
    assert len(daam_widget.run(pipe, PROMPTS[:1], tmp_path, steps=STEPS, progress=False)) == 1


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--steps", "0"], {}, "--steps is a whole number of 1 or more, not '0'"),
        (["--threads", "-1"], {}, "--threads is a whole number of 1 or more, not '-1'"),
        (["--batch-size", "x"], {}, "--batch-size is a whole number of 1 or more, not 'x'"),
        (["--device", "bogus"], {}, "--device takes a torch device (cpu, cuda, cuda:1, mps), not 'bogus'"),
        ([], {"RANK": "one"}, "RANK and WORLD_SIZE must be whole numbers"),
        ([], {"RANK": "3", "WORLD_SIZE": "2"}, "RANK=3 must lie in 0..WORLD_SIZE-1"),
    ],
)
def test_the_commands_bad_options_say_what_is_allowed(tmp_path, monkeypatch, capsys, argv, env, message):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    prompts = tmp_path / "p.txt"
    prompts.write_text("a red circle\n")
    try:
        code = cli_main(["run", str(prompts), "--out", str(tmp_path / "out"), *argv])
    except SystemExit as stop:  # argparse's way
        code = stop.code
    assert code == 2 and message in capsys.readouterr().err


def test_an_out_folder_below_a_file_says_so(pipe, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    prompts = tmp_path / "p.txt"
    prompts.write_text("a red circle\n")
    assert (
        cli_main(
            ["run", str(prompts), "--out", str(tmp_path / "file" / "out"), "--steps", "1", "--no-progress"]
        )
        == 2
    )
    assert "error: [Errno 20] Not a directory" in capsys.readouterr().err


def test_prompts_come_from_coco_captions_csv_and_tsv_with_where_they_came_from(pipe, tmp_path):
    coco = tmp_path / "captions_val.json"
    coco.write_text(
        json.dumps(
            {
                "images": [{"id": 139}],
                "annotations": [
                    {"image_id": 139, "id": 7, "caption": "a red circle"},
                    {"image_id": 285, "id": 9, "caption": 42},
                    {"image_id": 285, "id": 11, "caption": "a blue square "},
                ],
            }
        )
    )
    lines, bad = read_prompts(coco)
    assert [(p.line, p.prompt, p.source) for p in lines] == [
        (1, "a red circle", {"image_id": 139, "id": 7}),
        (3, "a blue square", {"image_id": 285, "id": 11}),
    ]
    assert [b.line for b in bad] == [2]
    table = tmp_path / "prompts.csv"
    table.write_text('caption,url\n"a red circle, big",http://x/1\na blue square,http://x/2\n')
    lines, _ = read_prompts(table, column="caption")
    assert [(p.prompt, p.source) for p in lines] == [
        ("a red circle, big", {"url": "http://x/1"}),
        ("a blue square", {"url": "http://x/2"}),
    ]
    with pytest.raises(ValueError, match="has no column 'prompt'; its columns: caption, url"):
        read_prompts(table)
    (tmp_path / "p.tsv").write_text("prompt\tn\na red circle\t1\n")
    assert read_prompts(tmp_path / "p.tsv")[0][0].source == {"n": "1"}
    (rows,) = [daam_widget.run(pipe, coco, tmp_path / "out", steps=STEPS, progress=False)[:1]]
    assert rows[0].source == {"image_id": 139, "id": 7} and read_index(tmp_path / "out")[0].source["id"] == 7
    with pytest.raises(ValueError, match="is not a COCO captions file"):
        (tmp_path / "other.json").write_text("[1, 2]")
        read_prompts(tmp_path / "other.json")


def test_a_parquet_prompt_file_without_pyarrow_says_what_to_install(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name.startswith("pyarrow"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    (tmp_path / "p.parquet").write_bytes(b"PAR1")
    with pytest.raises(ValueError, match=r"reading Parquet needs pyarrow \(pip install pyarrow\)"):
        read_prompts(tmp_path / "p.parquet")


def test_a_parquet_prompt_file_reads_its_column_and_keeps_the_other_columns(pipe, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "url": ["http://x/1", "http://x/2", "http://x/3"],
            "caption": ["a red circle", None, "a blue square"],
        }
    )
    pq.write_table(table, tmp_path / "prompts.parquet")
    lines, bad = read_prompts(tmp_path / "prompts.parquet", column="caption")
    assert [(p.line, p.prompt, p.source) for p in lines] == [
        (1, "a red circle", {"url": "http://x/1"}),
        (3, "a blue square", {"url": "http://x/3"}),
    ]
    assert [b.line for b in bad] == [2]
    rows = daam_widget.run(
        pipe, tmp_path / "prompts.parquet", tmp_path / "out", steps=STEPS, column="caption", progress=False
    )
    assert [(r.line, r.prompt, r.source) for r in rows] == [(p.line, p.prompt, p.source) for p in lines]


def test_a_maps_folder_that_cannot_be_written_stops_the_command_with_the_reason(
    tmp_path, monkeypatch, capsys
):
    """As root no folder is unwritable: the writer is made to fail as an unwritable one does."""
    from daam_widget import _files

    def refused(tensors, path, metadata=None):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(_files, "save_file", refused)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red circle\n")
    out = ["--out", str(tmp_path / "out"), "--steps", "1", "--no-progress"]
    assert cli_main(["run", str(prompts), *out]) == 2
    err = capsys.readouterr().err
    assert "error: [Errno 13] Permission denied" in err and "Traceback" not in err
