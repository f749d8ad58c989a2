"""``daam-widget run PROMPTS --out DIR``: DAAM over a prompt file, resumable, one or many processes.

``accelerate launch -m daam_widget run ...`` or ``torchrun --nproc_per_node N -m daam_widget run ...`` split
the prompts by rank; each process uses ``cuda:LOCAL_RANK`` when CUDA is there. Rerun the same command to
finish an interrupted run. See docs/runs.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import torch

from ._batch import PromptFailed
from ._batch import run as run_prompts
from ._prompts import PromptFileError
from ._run_files import FolderInUse, launcher_rank

TOYS = {"toy": "sd", "toy-flux": "flux"}
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def load_model(model: str, device: str, dtype: str | None) -> Any:
    """``toy`` and ``toy-flux``: the embedded toy UNet and transformer; otherwise a local folder or a hub id,
    through ``from_pretrained``."""
    torch_dtype = DTYPES[dtype] if dtype else None
    if model in TOYS:
        from .toy import load_pipeline

        return load_pipeline(TOYS[model], device=device, dtype=torch_dtype)
    from ._dependencies import quiet_pipeline_imports

    with quiet_pipeline_imports():
        from diffusers import DiffusionPipeline
    kwargs: dict[str, Any] = {"torch_dtype": torch_dtype} if torch_dtype else {}
    if os.path.isdir(model):
        kwargs["local_files_only"] = True
    try:
        pipe = DiffusionPipeline.from_pretrained(model, **kwargs)
    except (OSError, ValueError) as error:
        where = "the folder" if os.path.isdir(model) else "the hub id (not a folder here)"
        reason = str(error).rstrip(".")
        raise SystemExit(
            f"--model {model}: {where} does not load with DiffusionPipeline.from_pretrained: {reason}. "
            "--model takes 'toy', 'toy-flux', a saved pipeline folder or a hub id"
        ) from None
    return pipe.to(device)


def parse_size(text: str) -> tuple[int, int]:
    """``512`` or ``768x512`` (height x width)."""
    try:
        parts = [int(x) for x in text.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2) or min(parts) <= 0:
        raise argparse.ArgumentTypeError(f"--size is N or HxW in pixels (512, 768x512), not {text!r}")
    return (parts[0], parts[-1])


def positive(name: str) -> Any:
    """An argparse type: a whole number of 1 or more, named in the error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise argparse.ArgumentTypeError(f"{name} is a whole number of 1 or more, not {text!r}")
        return value

    return parse


def parse_device(text: str) -> torch.device:
    try:
        return torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(
            f"--device takes a torch device (cpu, cuda, cuda:1, mps), not {text!r}"
        ) from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="daam-widget run", description=__doc__.splitlines()[0])
    p.add_argument(
        "prompts",
        help="text (one prompt a line), JSONL ({'prompt', 'seed', ...}), a COCO captions .json, .csv, "
        ".tsv or .parquet",
    )
    p.add_argument("--column", default="prompt", help="the prompt column of a .csv, .tsv or .parquet file")
    p.add_argument("--out", required=True, help="the run's folder (maps/, index.jsonl, run.json)")
    p.add_argument("--model", default="toy", help="'toy' (default), 'toy-flux', a folder or a hub id")
    p.add_argument("--steps", type=positive("--steps"), help="num_inference_steps (default: the pipeline's)")
    p.add_argument("--guidance", type=float, help="guidance_scale (default: the pipeline's)")
    p.add_argument("--size", type=parse_size, help="N or HxW in pixels (default: the pipeline's)")
    p.add_argument(
        "--seed", type=int, default=0, help="prompt k (line k+1) uses seed + k unless it names one"
    )
    p.add_argument("--images-per-prompt", type=positive("--images-per-prompt"), default=1)
    p.add_argument("--batch-size", type=positive("--batch-size"), default=1, help="prompts per pipeline call")
    p.add_argument("--layers", nargs="+", help="trace only layers whose names start with these")
    p.add_argument(
        "--softmax-over", choices=("text", "all"), default="text", help="joint attention (SD3, Flux)"
    )
    p.add_argument("--per-step", action="store_true", help="also write each image's maps through the steps")
    p.add_argument("--strict", action="store_true", help="stop at the first bad line instead of skipping it")
    p.add_argument(
        "--device", type=parse_device, help="default: cuda:LOCAL_RANK when CUDA is available, else cpu"
    )
    p.add_argument("--dtype", choices=sorted(DTYPES), help="load the model in this dtype")
    p.add_argument("--threads", type=positive("--threads"), help="torch CPU threads per process")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (the summary line stays)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        rank, world = launcher_rank()
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = args.device or (f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        print(f"error: --device {device}: this machine has no CUDA device (use cpu)", file=sys.stderr)
        return 2
    pipe = load_model(args.model, device, args.dtype)
    try:
        run_prompts(
            pipe,
            args.prompts,
            args.out,
            seed=args.seed,
            images_per_prompt=args.images_per_prompt,
            batch_size=args.batch_size,
            steps=args.steps,
            guidance=args.guidance,
            size=args.size,
            layers=args.layers,
            softmax_over=args.softmax_over,
            per_step=args.per_step,
            strict=args.strict,
            column=args.column,
            model=args.model,
            rank=rank,
            world_size=world,
            progress=not args.no_progress,
            summary=True,
        )
    except (PromptFileError, PromptFailed, FolderInUse, OSError, ValueError, TypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
