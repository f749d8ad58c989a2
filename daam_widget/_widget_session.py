"""A widget's pipeline and its generations, without traitlets: what the pipeline is called with, under
which trace, and when the maps so far are worth sending while it runs."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import Any

import torch
import traitlets as t

from ._heat_maps import HeatMaps
from ._prompts import check_pipeline_arguments
from ._step_maps import StepMaps
from ._trace import Trace, trace
from ._video_maps import fill_frames

LIVE_INTERVAL_S = 0.25
"""The shortest time between two live updates of the maps while generating (at most 4 a second)."""
_now = time.monotonic

SEEDS = 2**64
"""Seeds ``torch.Generator.manual_seed`` takes: 0 to 2**64 - 1."""


def checked_seed(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < SEEDS:
        raise t.TraitError(f"seed must be an integer from 0 to 2**64 - 1, not {value!r}")
    return value


def refuse_generator(kwargs: dict[str, Any]) -> None:
    """The widget makes each generation's generator from its seed, so that the history says which seed
    made each image; a ``generator=`` would silently outlive the call it was given to."""
    if "generator" in kwargs:
        raise TypeError(
            "DaamWidget makes the generator from seed=: pass seed=... (an integer from 0 to 2**64 - 1) "
            "instead of generator=..."
        )


class GenerationSession:
    """The pipeline, the keyword arguments it is called with (each call's update them), the prompt last
    asked for, and the trace of the last generation that finished."""

    def __init__(self, pipe: Any, pipe_kwargs: dict[str, Any], prompt: str | None, time_resolved: bool):
        if pipe is not None:
            refuse_generator(pipe_kwargs)
        self.pipe = pipe
        self.pipe_kwargs = pipe_kwargs
        self.asked = prompt
        """The last prompt asked for, generated or not (a failed first run generates none)."""
        self.time_resolved = time_resolved
        self.concepts: list[str] | None = None
        """Concepts to trace concept maps of (the widget's ``concepts``)."""
        self.trace: Trace | None = None
        self.output: Any = None
        """The pipeline's output of the last generation (a video's frames where the trace saw none whole)."""
        self.generating = False
        """A generation runs: trait changes it makes must not start another computation."""

    def prepare(
        self, prompt: str | None, seed: int, pipe_kwargs: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        """The prompt and the pipeline's keyword arguments of a generation, or the error that stops it."""
        prompt = self.asked if prompt is None else prompt
        self.asked = prompt
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError(f"the prompt must be a non-empty string, not {prompt!r}")
        checked_seed(seed)
        refuse_generator(pipe_kwargs)
        check_pipeline_arguments(self.pipe, pipe_kwargs, owner="DaamWidget")
        self.pipe_kwargs.update(pipe_kwargs)
        return prompt, {**self.pipe_kwargs, "generator": torch.Generator("cpu").manual_seed(seed)}

    def total_steps(self, kwargs: dict[str, Any]) -> int:
        """Steps the pipeline will run: as asked, else its default (50 for SD, 28 for SD3 and Flux)."""
        if "num_inference_steps" in kwargs:
            return int(kwargs["num_inference_steps"])
        parameter = inspect.signature(type(self.pipe).__call__).parameters.get("num_inference_steps")
        return int(parameter.default) if parameter is not None and isinstance(parameter.default, int) else 50

    def run(
        self,
        prompt: str,
        kwargs: dict[str, Any],
        on_progress: Callable[[int, int], None],
        on_frame: Callable[[StepMaps], None],
    ) -> Trace:
        """Generate under a trace that keeps every step. After each step ``on_progress(done, total)``,
        and at most every ``LIVE_INTERVAL_S`` (not after the last step) ``on_frame`` with the maps so far."""
        last_frame = _now()
        fallback_total = self.total_steps(kwargs)

        def after_step(tc: Trace) -> None:
            nonlocal last_frame
            total = int(getattr(self.pipe, "num_timesteps", 0) or fallback_total)
            on_progress(tc.num_steps, total)
            now = _now()
            if now - last_frame < LIVE_INTERVAL_S or tc.num_images == 0 or tc.num_steps >= total:
                return
            last_frame = now
            so_far = tc.step_maps(0, prompt=prompt)
            if so_far.words:
                on_frame(so_far)

        self.generating = True
        try:
            with trace(
                self.pipe,
                time_resolved=self.time_resolved,
                per_step=True,
                on_step=after_step,
                concepts=self.concepts,
            ) as tc:
                self.output = self.pipe(prompt=prompt, **kwargs)
        finally:
            self.generating = False
        self.trace = tc
        return tc

    def resolutions(self) -> list[str]:
        """The last trace's resolutions as ``"HxW"`` (a video's in space), largest first."""
        grids = self.trace.resolutions if self.trace is not None else []
        return [f"{g[-2]}x{g[-1]}" for g in grids]

    def layer_names(self) -> list[str]:
        """The last trace's attention layers, in model order."""
        return list(self.trace.layer_names) if self.trace is not None else []

    def maps_at(self, prompt: str, resolution: str, steps: tuple[int, int], layer: str = "all") -> HeatMaps:
        """The last trace's maps at ``resolution`` (``"all"`` or ``"HxW"``), ``steps`` ((0, 0): all) and
        ``layer`` (``"all"`` or one layer's name)."""
        assert self.trace is not None
        options: dict[str, Any] = {}
        if resolution != "all":
            options["resolutions"] = [grid_of(resolution)]
        if layer != "all":
            options["layers"] = [layer]
        if steps != (0, 0):
            options["steps"] = range(*steps)
        maps = self.trace.heat_maps(0, prompt=prompt, **options)
        fill_frames(maps, self.output, 0)
        return maps


def grid_of(resolution: str) -> tuple[int, int]:
    h, w = (int(x) for x in resolution.split("x"))
    return h, w
