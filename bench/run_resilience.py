"""What a dataset run survives: SIGKILL at many moments, bad lines, and two launches started at once.

    python -m bench.run_resilience [--trials 16] [--prompts 16] [--races 5] [--json FILE]

- **Kill and rerun.** One uninterrupted ``daam-widget run`` of the toy on ``--prompts`` captions is the
  reference. Each trial starts the same command in a fresh folder and SIGKILLs it at another moment (after
  0 to all-but-one maps files exist, plus 0 to 40 ms, so that some kills land inside a write), checks that
  every file under its real name loads and that the index parts name only files that exist, reruns the
  command, and checks that every image is indexed exactly once, no temporary file is left, and every maps
  file's arrays (the grids, the scales, the image) equal the reference's bit for bit.
- **Bad lines.** A prompt file with the lines that used to stop a run (a seed of 2**70, a guidance of
  "high", eta "x", a height of 7, a lone surrogate, 0 and -1 steps) between good ones: which lines are
  skipped with which reason, and that a rerun goes past them.
- **Races.** Two launches on one folder started at the same instant, ``--races`` times: one is refused at
  once naming the other, one completes, and the folder holds every image once.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from safetensors.numpy import load_file

from daam_widget import HeatMaps, read_index
from daam_widget.toy import EVALUATION_SEEDS, scene

STEPS = 5
BAD_LINES = [
    {"prompt": "an orange circle", "seed": 2**70},
    {"prompt": "a blue square", "guidance_scale": "high"},
    {"prompt": "a green star", "eta": "x"},
    {"prompt": "a red circle", "height": 7, "width": 64},  # a height alone, diffusers ignores
    {"prompt": "a purple \ud800 diamond"},
    {"prompt": "a yellow triangle", "num_inference_steps": 0},
    {"prompt": "a big blue circle", "num_inference_steps": -1},
]


def command(prompts: Path, out: Path) -> list[str]:
    return [
        sys.executable, "-m", "daam_widget", "run", str(prompts), "--out", str(out), "--steps", str(STEPS),
        "--threads", "1", "--no-progress",
    ]  # fmt: skip


def environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}


def maps_files(out: Path) -> list[str]:
    folder = out / "maps"
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) if folder.is_dir() else []


def kill_trial(prompts: Path, out: Path, after_files: int, delay_s: float, reference: Path) -> dict:
    process = subprocess.Popen(
        command(prompts, out), env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    while process.poll() is None and len(maps_files(out)) < after_files:
        time.sleep(0.002)
    time.sleep(delay_s)
    finished_first = process.poll() is not None
    process.send_signal(signal.SIGKILL)
    process.wait()
    present = maps_files(out)
    for name in present:
        HeatMaps.load(out / "maps" / name)  # raises if a file under its real name is not whole
    try:
        indexed = [Path(r.file).name for r in read_index(out)]
    except FileNotFoundError:
        indexed = []
    temporaries = [p.name for p in (out / "maps").iterdir() if p.name.startswith(".")] if present else []
    subprocess.run(command(prompts, out), env=environment(), check=True, capture_output=True)
    rows = read_index(out)
    expected = maps_files(reference)
    equal = all(
        _same(load_file(out / "maps" / name), load_file(reference / "maps" / name))
        for name in maps_files(out)
    )
    return {
        "kill_after_files": after_files,
        "extra_delay_ms": round(1000 * delay_s, 1),
        "files_at_kill": len(present),
        "indexed_at_kill": len(indexed),
        "index_names_only_present_files": set(indexed) <= set(present),
        "temporaries_at_kill": len(temporaries),
        "finished_before_kill": finished_first,
        "rows_after_rerun": len(rows),
        "each_image_once": [Path(r.file).name for r in rows] == expected,
        "temporaries_after_rerun": sum(p.name.startswith(".") for p in (out / "maps").iterdir()),
        "arrays_equal_to_uninterrupted": equal and maps_files(out) == expected,
    }


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and (a[k] == b[k]).all() for k in a)


def bad_lines(root: Path) -> dict:
    prompts = root / "bad.jsonl"
    good = [{"prompt": scene(EVALUATION_SEEDS + k).caption} for k in range(3)]
    lines = [good[0], *BAD_LINES[:4], good[1], *BAD_LINES[4:], good[2]]
    prompts.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = root / "bad"
    first = subprocess.run(command(prompts, out), env=environment(), capture_output=True, text=True)
    again = subprocess.run(command(prompts, out), env=environment(), capture_output=True, text=True)
    skipped = [line for line in first.stderr.splitlines() if line.startswith("skipped line")]
    return {
        "lines": len(lines),
        "exit_code": first.returncode,
        "images": len(read_index(out)),
        "good_lines_done": [r.line for r in read_index(out)],
        "skipped": skipped,
        "rerun_exit_code": again.returncode,
        "rerun_summary": [line for line in again.stderr.splitlines() if line.startswith("rank")],
    }


def race(prompts: Path, out: Path) -> dict:
    launch = command(prompts, out)
    both = [
        subprocess.Popen(
            launch, env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outcomes = [(p.wait(), p.stderr.read() if p.stderr else "") for p in both]
    refused = [err for code, err in outcomes if code == 2 and "is in use by another run: process" in err]
    rows = read_index(out)
    return {
        "exit_codes": [code for code, _ in outcomes],
        "refused_naming_the_other": len(refused),
        "message": refused[0].strip().splitlines()[-1] if refused else "",
        "each_image_once": len(rows) == len({r.file for r in rows}) == len(maps_files(out)),
        "images": len(rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--races", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="daam-resilience-"))
    prompts = root / "prompts.txt"
    prompts.write_text("".join(scene(EVALUATION_SEEDS + k).caption + "\n" for k in range(args.prompts)))
    reference = root / "reference"
    subprocess.run(command(prompts, reference), env=environment(), check=True, capture_output=True)
    choose = random.Random(0)
    trials = []
    for t in range(args.trials):
        after = t * args.prompts // args.trials
        trial = kill_trial(prompts, root / f"kill-{t}", after, choose.uniform(0, 0.04), reference)
        trials.append(trial)
        print(json.dumps(trial), flush=True)
    races = [race(prompts, root / f"race-{r}") for r in range(args.races)]
    for r in races:
        print(json.dumps(r), flush=True)
    bad = bad_lines(root)
    print(json.dumps(bad, indent=1))
    checks = ("index_names_only_present_files", "each_image_once", "arrays_equal_to_uninterrupted")
    summary = {
        "prompts": args.prompts,
        "steps": STEPS,
        "kill_trials": len(trials),
        "kill_trials_all_good": sum(
            all(t[c] for c in checks) and not t["temporaries_after_rerun"] for t in trials
        ),
        "killed_while_running": sum(not t["finished_before_kill"] for t in trials),
        "files_at_kill": [t["files_at_kill"] for t in trials],
        "temporaries_at_kill": sum(t["temporaries_at_kill"] for t in trials),
        "races": len(races),
        "races_one_refused_one_complete": sum(
            r["refused_naming_the_other"] == 1
            and sorted(r["exit_codes"]) == [0, 2]
            and r["each_image_once"]
            and r["images"] == args.prompts
            for r in races
        ),
        "bad_lines_skipped": len(bad["skipped"]),
        "bad_lines": len(BAD_LINES),
        "good_lines_done": bad["good_lines_done"],
    }
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(
            json.dumps({"summary": summary, "trials": trials, "races": races, "bad_lines": bad}, indent=1)
        )


if __name__ == "__main__":
    main()
