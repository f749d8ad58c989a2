"""What tracing costs: generation time untraced vs. traced by ``daam_widget.trace``, and extra memory, with
the reference implementation (castorini's ``daam`` 0.2.0) measured beside it in the same run.

    python bench/overhead.py                        # every case this machine can run
    python bench/overhead.py --cases tiny-64,sd21-256 --reps 5 --json bench-results.json

Cases (``--cases``):

======================  ==============================================  =======  =====  =========
case                    pipeline                                        size     steps  reference
======================  ==============================================  =======  =====  =========
tiny-64                 daam_widget.testing's tiny SD-2 pipeline (CPU)  64 px    5      no [1]_
sd21-256                SD-2.1-base-shaped UNet, random weights (CPU)   256 px   3      no [1]_
tiny8-512               the rig's tiny UNet, a VAE scaling by 8 (CPU)   512 px   3      yes
sd21-512                SD-2.1-base-shaped UNet (CPU)                   512 px   2      yes
flux3-256, -all         Flux.1-dev-shaped, 1 + 2 of its blocks (CPU)    256 px   2      no [3]_
sd35m4-256, -all        SD3.5-Medium-shaped, 4 of its blocks (CPU)      256 px   2      no [3]_
sd21-512-cuda           SD-2.1-base-shaped UNet, fp16 on CUDA           512 px   50     no [2]_
sd21-512-cuda-4         the same, 4 images per prompt                   512 px   50     no [2]_
sdxl-1024-cuda          SDXL-base-shaped UNet, fp16 on CUDA             1024 px  30     no [2]_
flux-1024-cuda, -all    Flux.1-dev-shaped, bf16 on CUDA                 1024 px  28     no [3]_
sd35m-1024-cuda, -all   SD3.5-Medium-shaped, fp16 on CUDA               1024 px  28     no [3]_
======================  ==============================================  =======  =====  =========

``tiny-64``, ``sd21-512-cuda``, ``sd21-512-cuda-4``, ``sdxl-1024-cuda`` and ``flux-1024-cuda`` also come as
``-widget`` (traced as the widget traces, ``per_step=True``), ``-compiled`` (the denoiser under
``torch.compile``, inductor; the warm-up compiles it) and ``-widget-compiled``.

.. [1] The reference works only at 512, 768 or 1024 px (its latent size is hard-coded).
.. [2] The reference venv holds the CPU build of torch. The case is skipped without CUDA.
.. [3] The reference supports UNet pipelines only. ``-all`` cases trace with ``softmax_over="all"``.

Every case runs with guidance (scale 7.5; Flux: its distilled guidance 3.5), one prompt, one image, seed
0, on ``--threads`` torch threads
(1 by default). One untimed 1-step call of each kind warms up; then untraced and traced calls alternate
(see ``_measure.py``); times are medians. "ratio" is traced over untraced wall-clock time, "CPU ratio" the
same for the CPU time of the calling thread: on a shared machine the steadier of the two (with one torch
thread it is all the work a call does; on CUDA it means nothing), "fastest" the ratio of the fastest calls'
CPU times (contention only adds time), "min ratio" the same of their wall-clock times, "spread" the larger
of the two kinds' (slowest - fastest) / median wall-clock time. Memory: the peak above the level at the
call's start (CPU: resident set size sampled every 2 ms; CUDA: the allocator's peak), traced minus
untraced, and the bytes the tracer keeps (``Trace.memory_bytes()``; for the reference, its per-head map
store). "maps s" is the time to turn the record into every word's map at image size after the call.

For the reference cases the pipeline built here is written with ``save_pretrained`` to a temporary folder
and loaded by ``bench/reference.py`` under ``bench/.reference-venv`` (``bench/setup_reference.sh``), with
the same seed. Agreement of the maps (per word that occurs once in the prompt, both maps scaled to a
maximum of 1): Pearson correlation, the largest difference relative to the peak, and IoU of the Eq. 7
masks at tau = 0.4. It is reported twice: for our default maps (every cross-attention layer) and for ours
restricted to the reference's layers (it leaves out the mid block, and layers at 1/8 of the latent size,
which these UNets have only in the mid block).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import platform
import subprocess
import tempfile
import time
from typing import Any

import diffusers
import numpy as np
import torch
from _measure import interleaved
from pipelines import build
from safetensors.torch import load_file, save_file

import daam_widget

BENCH = pathlib.Path(__file__).resolve().parent
REFERENCE_PYTHON = BENCH / ".reference-venv" / "bin" / "python"
REFERENCE_LAYERS = ("down_blocks", "up_blocks")


@dataclasses.dataclass(frozen=True)
class Case:
    pipeline: str
    size: int
    steps: int
    reps: int
    device: str = "cpu"
    dtype: str = "float32"
    reference: bool = False
    softmax_over: str = "text"
    guidance: float | None = None
    """Overrides ``--guidance`` (Flux takes its distilled guidance here)."""
    max_sequence_length: int | None = None
    images: int = 1
    """``num_images_per_prompt``."""
    per_step: bool = False
    """Trace as the widget does (``per_step=True``)."""
    compiled: bool = False
    """``torch.compile`` the denoiser (inductor); the warm-up compiles it, untraced and traced."""


FLUX = {"guidance": 3.5}
CASES = {
    "tiny-64": Case("tiny", 64, 5, reps=9),
    "sd21-256": Case("sd21", 256, 3, reps=3),
    "tiny8-512": Case("tiny8", 512, 3, reps=5, reference=True),
    "sd21-512": Case("sd21", 512, 2, reps=2, reference=True),
    "flux3-256": Case("flux-3", 256, 2, reps=3, max_sequence_length=128, **FLUX),
    "flux3-256-all": Case("flux-3", 256, 2, reps=3, max_sequence_length=128, softmax_over="all", **FLUX),
    "sd35m4-256": Case("sd35m-4", 256, 2, reps=3),
    "sd35m4-256-all": Case("sd35m-4", 256, 2, reps=3, softmax_over="all"),
    "sd21-512-cuda": Case("sd21", 512, 50, reps=15, device="cuda", dtype="float16"),
    "sd21-512-cuda-4": Case("sd21", 512, 50, reps=9, device="cuda", dtype="float16", images=4),
    "sdxl-1024-cuda": Case("sdxl", 1024, 30, reps=7, device="cuda", dtype="float16"),
    "flux-1024-cuda": Case("flux", 1024, 28, reps=5, device="cuda", dtype="bfloat16", **FLUX),
    "flux-1024-cuda-all": Case(
        "flux", 1024, 28, reps=5, device="cuda", dtype="bfloat16", softmax_over="all", **FLUX
    ),
    "sd35m-1024-cuda": Case("sd35m", 1024, 28, reps=5, device="cuda", dtype="float16"),
    "sd35m-1024-cuda-all": Case(
        "sd35m", 1024, 28, reps=5, device="cuda", dtype="float16", softmax_over="all"
    ),
}
for _name in ("tiny-64", "sd21-512-cuda", "sd21-512-cuda-4", "sdxl-1024-cuda", "flux-1024-cuda"):
    CASES[f"{_name}-widget"] = dataclasses.replace(CASES[_name], per_step=True)
    CASES[f"{_name}-compiled"] = dataclasses.replace(CASES[_name], compiled=True)
    CASES[f"{_name}-widget-compiled"] = dataclasses.replace(CASES[_name], per_step=True, compiled=True)


def save_for_reference(pipe: Any, folder: pathlib.Path) -> None:
    """``save_pretrained``, plus what transformers 4.30 needs to read what transformers 5 wrote.

    The reference's transformers reads a CLIP tokenizer from ``vocab.json`` and ``merges.txt`` (written here
    from ``tokenizer.json``) and expects the text encoder's weights under ``text_model.``.
    """
    pipe.save_pretrained(folder)
    tokenizer = folder / "tokenizer"
    model = json.loads((tokenizer / "tokenizer.json").read_text())["model"]
    if not (tokenizer / "vocab.json").exists():
        (tokenizer / "vocab.json").write_text(json.dumps(model["vocab"]))
    if not (tokenizer / "merges.txt").exists():
        merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
        (tokenizer / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{m}\n" for m in merges))
    weights = folder / "text_encoder" / "model.safetensors"
    state = load_file(weights)
    if not any(k.startswith("text_model.") for k in state):
        save_file({f"text_model.{k}": v for k, v in state.items()}, weights, metadata={"format": "pt"})


def unique_words(words: tuple[str, ...]) -> list[str]:
    folded = [w.casefold() for w in words]
    return [w for w in words if folded.count(w.casefold()) == 1]


def run_ours(name: str, case: Case, pipe: Any, args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(case.device)

    extra = {} if case.max_sequence_length is None else {"max_sequence_length": case.max_sequence_length}

    def generate(steps: int = case.steps) -> np.ndarray:
        out = pipe(
            args.prompt,
            height=case.size,
            width=case.size,
            num_inference_steps=steps,
            guidance_scale=case.guidance if case.guidance is not None else args.guidance,
            generator=torch.Generator(device).manual_seed(args.seed),
            output_type="np",
            num_images_per_prompt=case.images,
            **extra,
        )
        return out.images[0]

    def traced(steps: int = case.steps) -> tuple[Any, np.ndarray]:
        options: dict[str, Any] = {"softmax_over": case.softmax_over, "per_step": case.per_step}
        with daam_widget.trace(pipe, **options) as tc:
            image = generate(steps)
        return tc, image

    def warmup() -> None:
        generate(1)
        traced(1)

    measured = interleaved(generate, traced, case.reps, device, warmup)
    tc, image = measured.pop("traced_result")
    start = time.perf_counter()
    maps = tc.heat_maps(prompt=args.prompt)
    soft = {w: maps.soft(w, normalize="max") for w in unique_words(maps.words)}
    maps_s = time.perf_counter() - start
    result = {
        "implementation": "daam_widget",
        **measured,
        "stored_bytes": tc.memory_bytes(),
        "layers": list(tc.layer_names),
        "maps_s": maps_s,
    }
    if case.reference:
        restricted = tc.heat_maps(prompt=args.prompt, layers=REFERENCE_LAYERS)
        result["_maps"] = soft
        result["_maps_reference_layers"] = {w: restricted.soft(w, normalize="max") for w in soft}
        result["_image"] = (image * 255).round().astype(np.uint8)
    return result


def run_reference(case: Case, pipe: Any, words: list[str], args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="daam-bench-") as tmp:
        folder, out = pathlib.Path(tmp) / "pipeline", pathlib.Path(tmp) / "out"
        save_for_reference(pipe, folder)
        command = [
            str(args.reference_python),
            str(BENCH / "reference.py"),
            f"--model={folder}",
            f"--prompt={args.prompt}",
            f"--words={','.join(words)}",
            f"--size={case.size}",
            f"--steps={case.steps}",
            f"--guidance={args.guidance}",
            f"--seed={args.seed}",
            f"--reps={case.reps}",
            f"--threads={args.threads}",
            f"--out={out}",
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"the reference failed ({done.returncode}):\n{done.stderr[-4000:]}")
        result = json.loads((out / "result.json").read_text())
        with np.load(out / "maps.npz", allow_pickle=False) as saved:
            result["_image"] = saved["image"]
            result["_maps"] = {k.removeprefix("map:"): saved[k] for k in saved.files if k.startswith("map:")}
    return result


def _min_max(m: np.ndarray) -> np.ndarray:
    return (m - m.min()) / (m.max() - m.min())


def agreement(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray], tau: float = 0.4) -> dict[str, Any]:
    """Per word: Pearson correlation of the soft maps, their largest difference, IoU of masks at ``tau``.

    ``max_diff`` is the largest |ours - reference| over the pixels with both maps scaled to a maximum of 1,
    that is the largest difference relative to the map's peak.

    Masks are taken after scaling both maps to a maximum of 1 (Eq. 7 as written) and, because the maps of a
    random-weight UNet are nearly flat (their minimum is well above ``tau`` times the maximum, so Eq. 7 masks
    are the whole image), also after scaling them to [0, 1] by minimum and maximum, as the reference's own
    ``expand_as`` does by default. ``mask_area`` is the mean fraction of the image the max-scaled masks cover.
    """
    per_word = {}
    for word, a in ours.items():
        b = theirs[word] / theirs[word].max()
        per_word[word] = {
            "pearson": float(np.corrcoef(a.ravel(), b.ravel())[0, 1]),
            "max_diff": float(np.abs(a - b).max()),
            "iou": daam_widget.iou(daam_widget.threshold(a, tau), daam_widget.threshold(b, tau)),
            "iou_min_max": daam_widget.iou(_min_max(a) >= tau, _min_max(b) >= tau),
            "mask_area": float(
                (daam_widget.threshold(a, tau).mean() + daam_widget.threshold(b, tau).mean()) / 2
            ),
        }
    summary: dict[str, Any] = {"tau": tau}
    for measure in ("pearson", "max_diff", "iou", "iou_min_max", "mask_area"):
        values = [v[measure] for v in per_word.values()]
        summary[f"{measure}_mean"] = float(np.mean(values))
        summary[f"{measure}_min"] = float(np.min(values))
        summary[f"{measure}_max"] = float(np.max(values))
    summary["per_word"] = per_word
    return summary


def print_table(results: dict[str, dict[str, Any]]) -> None:
    mb = 1 << 20
    print(
        f"\n{'case':<19} {'implementation':<15} {'untraced s':>10} {'traced s':>9} {'ratio':>6} "
        f"{'min ratio':>9} {'spread':>6} {'CPU ratio':>9} {'fastest':>7} {'extra peak MB':>13} "
        f"{'stored MB':>9} {'maps s':>7}"
    )
    for name, result in results.items():
        if "skipped" in result:
            print(f"{name:<19} skipped: {result['skipped']}")
            continue
        for side in ("ours", "reference"):
            r = result.get(side)
            if r is None:
                continue
            spread = max(r.get("spread", {"": float("nan")}).values())
            print(
                f"{name:<19} {r['implementation']:<15} {r['untraced_s']:>10.3f} {r['traced_s']:>9.3f} "
                f"{r['ratio']:>6.3f} {r.get('fastest_ratio', float('nan')):>9.3f} {spread:>6.1%} "
                f"{r['cpu_ratio']:>9.3f} {r['cpu_fastest_ratio']:>7.3f} "
                f"{r['extra_peak_bytes'] / mb:>13.1f} "
                f"{r['stored_bytes'] / mb:>9.2f} "
                f"{r['maps_s']:>7.3f}"
            )
    for name, result in results.items():
        for label in ("agreement", "agreement_reference_layers"):
            a = result.get(label)
            if a:
                which = "all our layers" if label == "agreement" else "the reference's layers"
                print(
                    f"{name}: maps vs the reference ({which}), {len(a['per_word'])} words: Pearson mean "
                    f"{a['pearson_mean']:.4f} (min {a['pearson_min']:.4f}); largest difference, both scaled "
                    f"to a maximum of 1: {a['max_diff_max']:.4f}; IoU of tau={a['tau']} masks "
                    f"mean {a['iou_mean']:.3f} (masks cover {a['mask_area_mean']:.0%}), after min-max "
                    f"scaling mean {a['iou_min_max_mean']:.3f} (min {a['iou_min_max_min']:.3f})"
                )
        if "image_max_abs_diff" in result:
            print(
                f"{name}: traced images, ours vs the reference's: max |diff| {result['image_max_abs_diff']} "
                f"of 255, mean {result['image_mean_abs_diff']:.3f}"
            )


def machine(args: argparse.Namespace) -> dict[str, Any]:
    """What the figures were measured on, including how busy the machine was when the run began."""
    cpu = platform.machine()
    with open("/proc/cpuinfo") as f:
        cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "threads": args.threads,
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "prompt": args.prompt,
        "seed": args.seed,
        "guidance": args.guidance,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated, from: " + ", ".join(CASES))
    parser.add_argument("--reps", type=int, default=None, help="timed calls of each kind (default: per case)")
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (default: per case)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads, both sides (default 1)")
    parser.add_argument("--prompt", default="a red circle to the left of a blue square")
    parser.add_argument("--guidance", type=float, default=7.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-reference", action="store_true", help="skip the reference implementation")
    parser.add_argument("--reference-python", type=pathlib.Path, default=REFERENCE_PYTHON)
    parser.add_argument("--json", type=pathlib.Path, default=None, help="also write the results here")
    args = parser.parse_args()
    names = [n for n in args.cases.split(",") if n]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        parser.error(f"unknown cases {unknown}; cases are: {', '.join(CASES)}")
    torch.set_num_threads(args.threads)
    environment = machine(args)
    print("machine: " + ", ".join(f"{k} {v}" for k, v in environment.items() if k != "prompt"), flush=True)
    with_reference = not args.no_reference and args.reference_python.exists()
    if not args.no_reference and not with_reference:
        print(f"no reference venv at {args.reference_python} (bench/setup_reference.sh makes it): skipped")

    results: dict[str, dict[str, Any]] = {}
    pipes: dict[tuple[str, str, str, bool], Any] = {}
    for name in names:
        case = CASES[name]
        case = dataclasses.replace(case, steps=args.steps or case.steps, reps=args.reps or case.reps)
        if case.device == "cuda" and not torch.cuda.is_available():
            results[name] = {"skipped": "no CUDA device"}
            continue
        key = (case.pipeline, case.device, case.dtype, case.compiled)
        if key not in pipes:
            pipes.clear()  # one pipeline in memory at a time
            pipe = build(case.pipeline, seed=args.seed, device=case.device)
            if case.dtype != "float32":
                pipe = pipe.to(dtype=getattr(torch, case.dtype))
            if case.compiled:
                denoiser = "unet" if hasattr(pipe, "unet") else "transformer"
                setattr(pipe, denoiser, torch.compile(getattr(pipe, denoiser)))
            pipe.set_progress_bar_config(disable=True)
            pipes[key] = pipe
        pipe = pipes[key]
        print(f"{name}: {case}", flush=True)
        result: dict[str, Any] = {"case": dataclasses.asdict(case), "ours": run_ours(name, case, pipe, args)}
        if case.reference and with_reference:
            ours = result["ours"]
            reference = run_reference(case, pipe, list(ours["_maps"]), args)
            result["reference"] = reference
            result["agreement"] = agreement(ours.pop("_maps"), reference["_maps"])
            result["agreement_reference_layers"] = agreement(
                ours.pop("_maps_reference_layers"), reference.pop("_maps")
            )
            diff = np.abs(ours.pop("_image").astype(int) - reference.pop("_image").astype(int))
            result["image_max_abs_diff"] = int(diff.max())
            result["image_mean_abs_diff"] = float(diff.mean())
        for side in ("ours", "reference"):
            for private in [k for k in result.get(side, {}) if k.startswith("_")]:
                del result[side][private]
        results[name] = result
        print_table({name: result})

    print("\nall cases" + (" (reference: daam 0.2.0)" if with_reference else ""))
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps({"environment": environment, "results": results}, indent=1))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
