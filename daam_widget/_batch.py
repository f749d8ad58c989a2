"""``run(pipe, prompts, out_dir)``: DAAM over a prompt file, resumable, split across a launcher's processes.

The good prompts are cut into batches (consecutive prompts with the same call keywords, at most
``batch_size``), the same whatever the number of processes; process ``rank`` of ``world`` (``RANK`` and
``WORLD_SIZE`` as ``torchrun`` and ``accelerate launch`` set them; no process group is needed) takes batches
``rank, rank + world, ...``, traces their pipeline calls and writes one ``HeatMaps`` file per image
(``_run_files``). A batch with any image missing is generated whole again, so a resumed run computes each
image in the same batch as an uninterrupted one.

What an image is does not depend on the split: prompt ``k`` (its line, from 0) has seed ``seed + k`` unless
its line names one, and its images draw their noise in order from one CPU ``torch.Generator`` seeded with
it, as ``pipe(prompt, num_images_per_prompt=n, generator=[g] * n)`` does; a prompt's images are always in
the same call. The batch size changes no noise, but float32 kernels may round differently for another batch
shape (on the toy, CPU: maps within 3e-5 of 17, an image pixel off by 1 level; docs/runs.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ._backbones import backbone_for
from ._prompts import (
    BadLine,
    PromptFileError,
    PromptLine,
    check_pipeline_arguments,
    pipeline_arguments,
    read_prompts,
)
from ._run_files import (
    MAPS,
    IndexRow,
    PlannedImage,
    RunSettings,
    append_row,
    holding_rank,
    image_name,
    image_spec,
    index_rows,
    launcher_rank,
    locked,
    write_index,
)
from ._trace import trace
from ._video_maps import fill_frames

Prompts = str | os.PathLike | Iterable[str | Mapping[str, Any]]


def run(
    pipe: Any,
    prompts: Prompts,
    out_dir: str | os.PathLike,
    *,
    seed: int = 0,
    images_per_prompt: int = 1,
    batch_size: int = 1,
    steps: int | None = None,
    guidance: float | None = None,
    size: tuple[int, int] | None = None,
    layers: Sequence[str] | None = None,
    softmax_over: str = "text",
    per_step: bool = False,
    strict: bool = False,
    column: str = "prompt",
    model: str | None = None,
    rank: int | None = None,
    world_size: int | None = None,
    progress: bool = True,
    summary: bool | None = None,
    **pipe_kwargs: Any,
) -> list[IndexRow]:
    """Generate every prompt's images under the tracer and write their maps to ``out_dir``; return the index.

    Parameters
    ----------
    prompts:
        A prompt file (text, one prompt a line; JSONL: ``{"prompt", "seed", "negative_prompt"}`` and any
        keyword of the pipeline's call; a COCO captions .json; .csv, .tsv or .parquet with a prompt
        ``column``), or a list of strings and such dicts.
    seed:
        Prompt ``k`` (line ``k + 1``) uses ``seed + k`` unless its line gives a seed.
    images_per_prompt, batch_size:
        Images of each prompt, and prompts per pipeline call (images per call: their product).
    steps, guidance, size, pipe_kwargs:
        ``num_inference_steps``, ``guidance_scale``, ``(height, width)`` and other keywords of every call (a
        line's own keywords win). ``None``: the pipeline's default.
    layers, softmax_over, per_step:
        As ``trace`` takes them. ``per_step`` also writes each image's ``StepMaps`` beside its maps.
    strict:
        Stop at the first bad or failing line (``PromptFileError``, ``PromptFailed``) instead of reporting
        it and going on.
    column:
        The prompt column of a CSV, TSV or Parquet prompt file.
    model:
        The model's name in the run's settings (default: the pipeline's ``name_or_path``).
    progress, summary:
        Show a progress bar (rank 0), and end with a line on what this process did (default: ``progress``).
    rank, world_size:
        This process's share: batches ``rank, rank + world_size, ...``. Default: from the launcher's
        environment.

    Returns
    -------
    The rows of ``out_dir/index.jsonl`` as this process leaves it: every image done so far, in prompt order.
    The last process to end writes the whole index.
    """
    if rank is None or world_size is None:
        rank, world_size = launcher_rank()
    if images_per_prompt < 1 or batch_size < 1:
        raise ValueError(
            f"images_per_prompt and batch_size must be 1 or more, not {images_per_prompt}, {batch_size}"
        )
    out = Path(out_dir)
    allowed = pipeline_arguments(pipe)
    check_pipeline_arguments(pipe, pipe_kwargs)
    lines, bad = read_prompts(prompts, allowed, column)
    _report(bad, strict, rank)
    base = dict(pipe_kwargs)
    for key, value in (("num_inference_steps", steps), ("guidance_scale", guidance)):
        if value is not None:
            base[key] = value
    if size is not None:
        base["height"], base["width"] = size
    settings = RunSettings(
        model=model or getattr(pipe, "name_or_path", None) or type(pipe).__name__,
        pipeline=type(pipe).__name__,
        dtype=str(getattr(pipe, "dtype", "")).removeprefix("torch."),
        call=base,
        images_per_prompt=images_per_prompt,
        layers=list(layers) if layers is not None else "all",
        softmax_over=softmax_over,
        per_step=per_step,
    )
    trace_options: dict[str, Any] = {"layers": layers, "softmax_over": softmax_over, "per_step": per_step}
    trace(pipe, **trace_options)  # the options checked once, not a failure of every prompt
    (out / MAPS).mkdir(parents=True, exist_ok=True)
    with holding_rank(out, rank, world_size):
        settings.bind(out)
        row_settings = settings.to_json()
        planned = _plan(lines, base, seed, images_per_prompt)
        done = set(os.listdir(out / MAPS))
        by_image = {(p.line.index, p.image): p for p in planned}
        mine = [b for n, b in enumerate(_batches(lines, base, batch_size)) if n % world_size == rank]
        missing = [
            sum(by_image[line.index, j].name not in done for line in b for j in range(images_per_prompt))
            for b in mine
        ]
        pending = [b for b, m in zip(mine, missing, strict=True) if m]
        total = sum(len(b) for b in mine) * images_per_prompt
        skipped = total - sum(missing)
        written, started = 0, time.perf_counter()
        bar = tqdm(
            total=total,
            initial=skipped,
            unit="img",
            desc=f"rank {rank}/{world_size}" if world_size > 1 else "daam run",
            disable=not progress or rank != 0,
        )
        failed: list[PromptLine] = []
        calls = _Calls(pipe, seed, images_per_prompt, trace_options)
        with _quiet_progress(pipe):
            for batch in pending:
                for line, outcome in _generate_each(calls, batch, {**base, **batch[0].kwargs}):
                    if isinstance(outcome, Exception):
                        _report_failure(line, outcome, strict)
                        failed.append(line)
                        bar.update(images_per_prompt)
                        continue
                    maps_by_image, steps_by_image = outcome
                    for j, maps in enumerate(maps_by_image):
                        image = by_image[line.index, j]
                        if image.name in done:
                            continue
                        if steps_by_image:
                            steps_by_image[j].save(out / MAPS / image.steps_name)
                        maps.save(out / MAPS / image.name)
                        append_row(out, rank, image.row(row_settings, bool(steps_by_image)))
                        written += 1
                        bar.update()
        bar.close()
        elapsed = time.perf_counter() - started
        with locked(out):
            rows = index_rows(out, planned, row_settings)
            write_index(out, rows)
        if progress if summary is None else summary:
            rate = f", {written / elapsed:.2f} images/s" if written and elapsed > 0 else ""
            lines_failed = (
                f", {len(failed)} lines failed ({', '.join(str(f.line) for f in failed)})" if failed else ""
            )
            print(
                f"rank {rank}/{world_size}: wrote {written} images in {elapsed:.1f} s{rate}, {skipped} were "
                f"done{lines_failed}; index: {len(rows)} of {len(planned)} images",
                file=sys.stderr,
            )
        return rows


def _plan(
    lines: Sequence[PromptLine], base: dict[str, Any], seed: int, images_per_prompt: int
) -> list[PlannedImage]:
    """Every image of the run, in prompt order, with its seed, call keywords and file name."""
    planned = []
    for line in lines:
        line_seed = _seed_of(line, seed)
        for j in range(images_per_prompt):
            name = image_name(line.index, j, image_spec(line, line_seed, j, images_per_prompt))
            planned.append(PlannedImage(line, line_seed, j, {**base, **line.kwargs}, name))
    return planned


@contextlib.contextmanager
def _quiet_progress(pipe: Any) -> Iterator[None]:
    """The pipeline's own progress bar off while the run's is shown, and the user's setting back after,
    whatever ends the run."""
    if not hasattr(pipe, "set_progress_bar_config"):
        yield
        return
    had, before = hasattr(pipe, "_progress_bar_config"), getattr(pipe, "_progress_bar_config", None)
    pipe.set_progress_bar_config(disable=True)
    try:
        yield
    finally:
        if had:
            pipe._progress_bar_config = before
        else:
            del pipe._progress_bar_config


def _seed_of(line: PromptLine, seed: int) -> int:
    """Prompt ``k`` uses ``seed + k`` unless its line names a seed."""
    return line.seed if line.seed is not None else seed + line.index


def _report(bad: Sequence[BadLine], strict: bool, rank: int) -> None:
    if bad and strict:
        raise PromptFileError(f"bad prompt {bad[0]} (without --strict, bad lines are reported and skipped)")
    if rank == 0:
        for b in bad:
            print(f"skipped {b}", file=sys.stderr)


class PromptFailed(RuntimeError):
    """A prompt's pipeline call failed under ``strict``."""


def _report_failure(line: PromptLine, error: Exception, strict: bool) -> None:
    what = f"line {line.line} ({_shortened(line.prompt)}) failed: {type(error).__name__}: {error}"
    if strict:
        raise PromptFailed(f"{what} (without --strict, failing lines are reported and skipped)") from error
    print(f"skipped {what}", file=sys.stderr)


def _shortened(text: str, most: int = 60) -> str:
    return repr(text if len(text) <= most else text[: most - 3] + "...")


@dataclass(frozen=True)
class _Calls:
    """What every pipeline call of a run shares: the pipeline, seed, images per prompt, trace options."""

    pipe: Any
    seed: int
    images_per_prompt: int
    trace_options: dict[str, Any]

    @property
    def count_keyword(self) -> str:
        """The pipeline's keyword for images (or videos) per prompt."""
        return "num_videos_per_prompt" if backbone_for(self.pipe).video else "num_images_per_prompt"


def _generate_each(
    calls: _Calls, batch: Sequence[PromptLine], kwargs: dict[str, Any]
) -> Iterable[tuple[PromptLine, tuple[list[Any], list[Any]] | Exception]]:
    """Each prompt of ``batch`` with its maps (and step maps), or the error its call raised: a batch that
    fails is generated again one prompt at a time, so that only the prompts that fail alone are lost
    (a prompt's noise does not depend on its batch)."""
    try:
        results = list(_generate(calls, batch, kwargs))
    except Exception as error:
        if len(batch) == 1:
            yield batch[0], error
            return
        for line in batch:
            yield from _generate_each(calls, [line], kwargs)
        return
    for line, maps_by_image, steps_by_image in results:
        yield line, (maps_by_image, steps_by_image)


def _batches(lines: Sequence[PromptLine], base: dict, batch_size: int) -> Iterable[list[PromptLine]]:
    """Consecutive prompts with the same call keywords and the same kind of negative prompt, at most
    ``batch_size`` each."""
    batch: list[PromptLine] = []
    for line in lines:
        if batch and (len(batch) == batch_size or _call_key(batch[0], base) != _call_key(line, base)):
            yield batch
            batch = []
        batch.append(line)
    if batch:
        yield batch


def _call_key(line: PromptLine, base: dict) -> str:
    return json.dumps([{**base, **line.kwargs}, line.negative_prompt is None], sort_keys=True, default=str)


def _generate(
    calls: _Calls, batch: Sequence[PromptLine], kwargs: dict[str, Any]
) -> Iterable[tuple[PromptLine, list[Any], list[Any]]]:
    """One pipeline call for ``batch`` under the tracer: each prompt with its images' maps (and step maps)."""
    pipe, images_per_prompt, trace_options = calls.pipe, calls.images_per_prompt, calls.trace_options
    generators = []
    for line in batch:
        g = torch.Generator().manual_seed(_seed_of(line, calls.seed))
        generators += [g] * images_per_prompt
    call = {**kwargs, calls.count_keyword: images_per_prompt}
    if batch[0].negative_prompt is not None:
        call["negative_prompt"] = [line.negative_prompt for line in batch]
    with trace(pipe, **trace_options) as tc:
        out = pipe(
            prompt=[line.prompt for line in batch],
            generator=generators,
            **call,
        )
    for b, line in enumerate(batch):
        maps_by_image, steps_by_image = [], []
        for j in range(images_per_prompt):
            i = b * images_per_prompt + j
            maps = tc.heat_maps(i, prompt=line.prompt)
            if maps.image is None and hasattr(out, "images"):
                maps.image = np.asarray(out.images[i].convert("RGB"))
            fill_frames(maps, out, i)
            maps.settings |= {
                "prompt_index": line.index,
                "image_of_prompt": j,
                "seed": generators[i].initial_seed(),
            }
            maps_by_image.append(maps)
            if trace_options["per_step"]:
                steps_by_image.append(tc.step_maps(i, prompt=line.prompt))
        yield line, maps_by_image, steps_by_image
