"""``DaamWidget``: the notebook widget, a translation of a pipeline run or a ``HeatMaps`` into synced traits.

The browser side (``js/``, bundled into ``static/widget.js``) draws everything from these traits; what
travels and how is in ``_widget_data``, the page and picture for readers without a kernel in
``_html_export``. Hovering, pinning, the τ slider and scrubbing steps run in the browser with no kernel
round trip; the kernel is needed to generate, to change the layers summed, and to compare with an earlier
generation.
"""

from __future__ import annotations

import inspect
import os
import pathlib
import re
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import anywidget
import torch
import traitlets as t

from ._files import write_atomically
from ._heat_maps import HeatMaps
from ._html_export import fallback_html, standalone_page, static_picture
from ._prompts import check_pipeline_arguments
from ._trace import Trace, trace
from ._widget_data import NO_STEPS, encode_maps, encode_stack, encode_steps, png, spans_state

_STATIC = pathlib.Path(__file__).parent / "static"

_BINARY = (
    "image",
    "maps",
    "step_maps",
    "step_scales",
    "step_mass",
    "history_thumbnails",
    "other_image",
    "other_maps",
)
_WITHOUT_KERNEL = {"has_kernel": False, "can_generate": False, "status": "ready", "error": "", "message": ""}
LIVE_INTERVAL_S = 0.25
"""The shortest time between two live updates of the maps while generating (at most 4 a second)."""
_now = time.monotonic


@dataclass(frozen=True)
class _Entry:
    """One generation of the history strip, as the browser draws it."""

    prompt: str
    seed: int
    words: list[str]
    image: bytes
    thumbnail: bytes
    maps: bytes
    map_size: tuple[int, int]
    peaks: list[float]


SEEDS = 2**64
"""Seeds ``torch.Generator.manual_seed`` takes: 0 to 2**64 - 1."""


def _checked_seed(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < SEEDS:
        raise t.TraitError(f"seed must be an integer from 0 to 2**64 - 1, not {value!r}")
    return value


def _refuse_generator(kwargs: dict[str, Any]) -> None:
    """The widget makes each generation's generator from its seed, so that the history says which seed
    made each image; a ``generator=`` would silently outlive the call it was given to."""
    if "generator" in kwargs:
        raise TypeError(
            "DaamWidget makes the generator from seed=: pass seed=... (an integer from 0 to 2**64 - 1) "
            "instead of generator=..."
        )


@dataclass
class _Session:
    """What the widget holds beyond its traits: the pipeline, the last trace and what it is doing."""

    pipe: Any = None
    pipe_kwargs: dict[str, Any] = field(default_factory=dict)
    asked: str | None = None
    """The last prompt asked for, shown or not (a failed first run shows none)."""
    deferred: dict[str, Any] = field(default_factory=dict)
    """Traits given at construction that need the first generation's words or trace."""
    generating: bool = False
    """Trait changes come from the run itself: they must not re-aggregate."""
    trace: Trace | None = None
    shown: HeatMaps | None = None
    """The maps ``_show`` drew: every step, at the chosen resolution."""
    at_steps: tuple[tuple[int, int], HeatMaps] | None = None
    """``w.heat_maps`` for the steps chosen in the browser, made when asked for."""
    history: list[_Entry] = field(default_factory=list)
    last_live: float = 0.0
    live: bool = False
    """Maps of the run in progress are shown (live frames)."""
    fallback: Any = None
    """The display handle of the static picture shown beside the widget."""


class DaamWidget(anywidget.AnyWidget):
    """Generate with a diffusers pipeline under the DAAM tracer and explore the heat maps of the words.

    ``DaamWidget(pipe, "a red circle and a blue square", num_inference_steps=30)`` generates once
    (keyword arguments go to the pipeline; trait names such as ``tau=`` set traits) and shows the image
    with the prompt's words: hover a word for its map, click to pin it, move τ for the Eq. 7 mask, scrub
    the steps to see when a word is placed. Maps appear while the image is generated. Every generation
    joins the history strip, and one can be compared with the current image side by side.
    ``time_resolved=True`` also keeps every layer's sums per step (``w.trace.heat_maps(layers=...,
    steps=...)``; memory grows with the steps). ``DaamWidget.from_heat_maps(maps)`` shows saved maps
    without a pipeline.
    """

    _esm = _STATIC / "widget.js"

    prompt = t.Unicode("", help="The prompt the maps belong to (text as the user wrote it).").tag(sync=True)
    words = t.List(t.Unicode(), help="The prompt's words in order, repeats included (read-only).").tag(
        sync=True
    )
    spans = t.List(
        t.Dict(),
        help="Words and punctuation in text order: {text, start, end, word (index or None), available}.",
    ).tag(sync=True)
    image = t.Bytes(b"", help="The generated image as PNG bytes (empty while generating).").tag(sync=True)
    image_size = t.Tuple(t.Int(), t.Int(), default_value=(0, 0), help="(H, W) of the image.").tag(sync=True)
    maps = t.Bytes(b"", help="uint8 maps of all words, (words, h, w) row-major, each max-scaled to 255.").tag(
        sync=True
    )
    map_size = t.Tuple(t.Int(), t.Int(), default_value=(0, 0), help="(h, w) of each map in `maps`.").tag(
        sync=True
    )
    peaks = t.List(t.Float(), help="Each word's raw Eq. 6 maximum (255 in `maps`), for the legend.").tag(
        sync=True
    )
    selected = t.Union(
        [t.Int(), t.Unicode(), t.Tuple()],
        default_value=None,
        allow_none=True,
        help="The shown word's index into `words` (set a word, an index or (word, occurrence)); None: none.",
    ).tag(sync=True)
    pinned = t.List(
        t.Any(), help="Indices of the pinned words, compared side by side or as an argmax map (set words)."
    ).tag(sync=True)
    tau = t.Float(0.4, min=0.0, max=1.0, help="Eq. 7 threshold, a fraction of the word's maximum.").tag(
        sync=True
    )
    view = t.Enum(
        ("heat", "mask", "both"), "heat", help="Heat map (with the τ contour), Eq. 7 mask, or both."
    ).tag(sync=True)
    scale = t.Enum(
        ("word", "shared"),
        "word",
        help="Colour scale: each word's own peak, or one peak shared by all words (compares their mass).",
    ).tag(sync=True)
    opacity = t.Float(0.6, min=0.0, max=1.0, help="Opacity of the heat-map colours.").tag(sync=True)
    colormap = t.Enum(("inferno", "viridis", "jet"), "inferno", help="Colour map of the heat map.").tag(
        sync=True
    )
    compare = t.Enum(("side", "argmax"), "side", help="How pinned words are compared.").tag(sync=True)
    grid = t.Bool(True, help="Show every word's map as small multiples beside the hover view.").tag(sync=True)
    resolution = t.Unicode("all", help="Latent resolution summed: 'all' or one of `resolutions`.").tag(
        sync=True
    )
    resolutions = t.List(t.Unicode(), help="Latent resolutions the trace kept, as 'HxW' (read-only).").tag(
        sync=True
    )
    steps = t.Tuple(
        t.Int(),
        t.Int(),
        default_value=(0, 0),
        help="Denoising steps shown, [start, stop) from 0; (0, 0): all (Eq. 6). Drawn in the browser.",
    ).tag(sync=True)
    step_mode = t.Enum(
        ("single", "cumulative"),
        "single",
        help="What the step scrubber shows at step t: that step alone, or steps 0..t.",
    ).tag(sync=True)
    num_steps = t.Int(0, help="Denoising steps recorded one by one (read-only).").tag(sync=True)
    step_maps = t.Bytes(b"", help="uint8 (steps, words, gh, gw): each step's maps, each scaled to 255.").tag(
        sync=True
    )
    step_scales = t.Bytes(
        b"", help="float32 (steps, words): the raw maximum of each map in `step_maps`."
    ).tag(sync=True)
    step_grid = t.Tuple(t.Int(), t.Int(), default_value=(0, 0), help="(gh, gw) of `step_maps`.").tag(
        sync=True
    )
    step_mass = t.Bytes(
        b"",
        help="float32 (steps, resolutions, words): attention each word receives, per step and resolution.",
    ).tag(sync=True)
    history = t.List(
        t.Dict(),
        help="Generations of this widget, oldest first: {prompt, seed, words, thumbnail: [offset, length]}.",
    ).tag(sync=True)
    history_thumbnails = t.Bytes(b"", help="The history's thumbnails: PNGs one after another.").tag(sync=True)
    compare_to = t.Int(-1, help="The history entry shown beside the current image, or -1.").tag(sync=True)
    other = t.Dict(help="The compared entry: {prompt, seed, words, map_size, peaks}; {} when none.").tag(
        sync=True
    )
    other_image = t.Bytes(b"", help="PNG of the compared entry.").tag(sync=True)
    other_maps = t.Bytes(b"", help="uint8 maps of the compared entry, as `maps`.").tag(sync=True)
    seed = t.Int(0, help="Seed of the last generation.").tag(sync=True)
    status = t.Enum(("idle", "generating", "ready", "error"), "idle", help="What the widget is doing.").tag(
        sync=True
    )
    progress = t.Tuple(t.Int(), t.Int(), default_value=(0, 0), help="(step, steps) while generating.").tag(
        sync=True
    )
    error = t.Unicode("", help="The last error, shown in the widget.").tag(sync=True)
    message = t.Unicode("", help="The last status message (e.g. where the maps were saved).").tag(sync=True)
    can_generate = t.Bool(False, help="True when a pipeline is attached.").tag(sync=True)
    max_map_size = t.Int(256, min=1, help="Longer side of the maps sent to the browser, in pixels.")
    max_history = t.Int(12, min=1, help="Generations kept in the history strip (the oldest are dropped).")

    def __init__(
        self,
        pipe: Any = None,
        prompt: str | None = None,
        *,
        seed: int = 0,
        time_resolved: bool = False,
        **kwargs: Any,
    ) -> None:
        traits = {k: kwargs.pop(k) for k in list(kwargs) if self.class_traits().get(k) is not None}
        deferred: dict[str, Any] = {
            k: traits.pop(k) for k in ("selected", "pinned", "resolution", "steps") if k in traits
        }
        if pipe is not None:
            _refuse_generator(kwargs)
            check_pipeline_arguments(pipe, kwargs, others=list(self.class_traits()), owner="DaamWidget")
        self._session = _Session(pipe=pipe, pipe_kwargs=kwargs, asked=prompt, deferred=deferred)
        self._time_resolved = time_resolved
        super().__init__(**traits)
        self.can_generate = pipe is not None
        self.seed = seed
        self.on_msg(self._on_message)
        if pipe is not None and prompt is not None:
            try:
                self.generate(prompt)
            except Exception:  # shown in the widget (self.error); the widget is still returned
                pass
        elif prompt is not None:
            raise ValueError(
                "a prompt needs a pipeline: DaamWidget(pipe, prompt), or use from_heat_maps(maps)"
            )

    @classmethod
    def from_heat_maps(cls, maps: HeatMaps, **traits: Any) -> DaamWidget:
        """Show precomputed or saved maps (``HeatMaps.load(path)``) without a pipeline."""
        if not isinstance(maps, HeatMaps):
            raise TypeError(f"from_heat_maps needs a daam_widget.HeatMaps, not {type(maps).__name__}")
        widget = cls(**traits)
        widget._show(maps)
        return widget

    @property
    def heat_maps(self) -> HeatMaps | None:
        """The ``HeatMaps`` shown (at the chosen resolution and steps); None before the first generation."""
        session = self._session
        if session.shown is None or session.trace is None or self.steps == (0, 0):
            return session.shown
        if session.at_steps is None or session.at_steps[0] != self.steps:
            session.at_steps = (self.steps, self._maps_at(self.prompt))
        return session.at_steps[1]

    @property
    def trace(self) -> Trace | None:
        """The tracer of the last generation (per-layer sums, the step record), or None."""
        return self._session.trace

    def generate(self, prompt: str | None = None, seed: int | None = None, **pipe_kwargs: Any) -> HeatMaps:
        """Generate again under the tracer and show the new maps; progress and errors show in the widget.

        ``pipe_kwargs`` update the keyword arguments given at construction (``num_inference_steps=``,
        ``guidance_scale=``, ``height=``, ...). Errors are shown in the widget and raised.
        """
        session = self._session
        if session.pipe is None:
            raise RuntimeError(
                "this widget shows saved maps and has no pipeline; use DaamWidget(pipe, prompt)"
            )
        prompt = session.asked if prompt is None else prompt
        session.asked = prompt
        if not isinstance(prompt, str) or not prompt.strip():
            error = ValueError(f"the prompt must be a non-empty string, not {prompt!r}")
            self._fail(error)
            raise error
        try:
            seed = self.seed if seed is None else _checked_seed(seed)
            _refuse_generator(pipe_kwargs)
            check_pipeline_arguments(session.pipe, pipe_kwargs, owner="DaamWidget")
        except (t.TraitError, TypeError) as error:
            self._fail(error)
            raise
        session.pipe_kwargs.update(pipe_kwargs)
        kwargs = dict(session.pipe_kwargs)
        kwargs.setdefault("generator", torch.Generator("cpu").manual_seed(seed))
        session.generating = True
        with self.hold_sync():
            self.error, self.message, self.status = "", "", "generating"
            self.progress = (0, int(kwargs.get("num_inference_steps", _default_steps(session.pipe))))
        try:
            with trace(session.pipe, time_resolved=self._time_resolved, per_step=True) as tc:
                session.last_live, session.live = _now(), False
                after_step = tc.backbone.denoiser.register_forward_hook(
                    lambda *_: self._after_step(tc, prompt)
                )
                try:
                    session.pipe(prompt=prompt, **kwargs)
                finally:
                    after_step.remove()
            session.trace = tc
            self.seed = seed
            if self.resolution not in ["all", *self._resolutions()]:
                self.resolution = "all"
            self.steps = (0, 0)
            if "resolution" in session.deferred:  # given at construction: checked now that the trace is known
                self.resolution = session.deferred.pop("resolution")
            self._show(self._maps_at(prompt, steps=(0, 0)), prompt)
            if "steps" in session.deferred:
                self.steps = session.deferred.pop("steps")
            self._remember()
            if session.fallback is not None:  # the static picture shows the new image too
                session.fallback.update(self._fallback_bundle(), raw=True)
        except BaseException as error:  # Ctrl-C too: the widget must not stay "generating"
            if session.live and session.shown is not None:  # the last image's maps, not partial ones
                self._show(session.shown)
                session.asked = prompt
            self._fail(error)
            raise
        finally:
            session.generating = False
        shown = self.heat_maps
        assert shown is not None
        return shown

    def save_maps(self, path: str | os.PathLike | None = None) -> pathlib.Path:
        """Write the shown maps to a safetensors file (default: ``daam_<first words>.safetensors``)."""
        maps = self.heat_maps
        if maps is None:
            raise RuntimeError("there are no maps to save yet")
        slug = "_".join(re.findall(r"\w+", self.prompt)[:5]) or "maps"
        target = pathlib.Path(path if path is not None else f"daam_{slug}.safetensors")
        maps.save(target)
        self.message = f"saved maps to {target.resolve()}"
        return target

    def save_html(self, path: str | os.PathLike, title: str | None = None) -> pathlib.Path:
        """Write one self-contained HTML file (script, image and maps inline; no network, no kernel).

        Hovering, pinning, the views, the τ slider, the step scrubber and the grid work in it; generating,
        other resolutions and choosing another history entry need the kernel and are hidden.
        """
        state = {k: v for k, v in self.get_state().items() if not k.startswith("_")} | _WITHOUT_KERNEL
        buffers = {k: bytes(getattr(self, k)) for k in _BINARY}
        for k in _BINARY:
            state.pop(k, None)
        page = standalone_page(state, buffers, title or f"DAAM: {self.prompt}")
        target = pathlib.Path(path)
        write_atomically(target, lambda temporary: temporary.write_text(page, encoding="utf-8"))
        return target

    def _ipython_display_(self) -> None:
        """The widget, preceded by a static picture of its maps that the widget hides when it renders: a
        reader whose page cannot run the widget's scripts (an export opened offline) still sees the maps."""
        from IPython.display import display

        session = self._session
        if session.shown is not None:
            session.fallback = display(self._fallback_bundle(), raw=True, display_id=True)
        bundle = self._repr_mimebundle_()
        data, metadata = bundle if isinstance(bundle, tuple) else (bundle, {})
        display(data, metadata=metadata, raw=True)

    # -- traits from domain objects ----------------------------------------------------------------

    def _show(self, maps: HeatMaps, prompt: str | None = None) -> None:
        session = self._session
        size, data, peaks = encode_maps(maps, self.max_map_size)
        session.shown, session.at_steps = maps, None
        prompt = prompt if prompt is not None else maps.prompt
        time_view = self._time_view(prompt)
        with self.hold_sync():
            self.status, self.progress = "ready", (self.progress[1], self.progress[1])
            self.prompt = prompt
            self.words = list(maps.words)
            self.spans = spans_state(maps)
            self.image = png(maps.image)
            self.image_size = maps.shape
            self.map_size = size
            self.maps = data
            self.peaks = peaks
            self.selected = None
            self.pinned = []
            self.resolutions = self._resolutions()
            for key, value in time_view.items():
                setattr(self, key, value)
            for key in ("selected", "pinned"):
                if key in session.deferred:
                    setattr(self, key, session.deferred.pop(key))

    def _time_view(self, prompt: str) -> dict[str, Any]:
        tc = self._session.trace
        if tc is None or tc.num_images == 0:
            return {"num_steps": 0, **NO_STEPS}
        steps = tc.step_maps(0, prompt=prompt)
        grids = None if self.resolution == "all" else [_grid(self.resolution)]
        return {"num_steps": steps.num_steps, **encode_steps(steps, grids)}

    def _remember(self) -> None:
        """Add the shown generation to the history strip."""
        session = self._session
        maps = session.shown
        assert maps is not None
        entry = _Entry(
            prompt=self.prompt,
            seed=self.seed,
            words=list(self.words),
            image=self.image,
            thumbnail=png(maps.image, longer_side=64),
            maps=self.maps,
            map_size=(self.map_size[0], self.map_size[1]),
            peaks=list(self.peaks),
        )
        session.history = [*session.history, entry][-self.max_history :]
        offsets, at = [], 0
        for e in session.history:
            offsets.append([at, len(e.thumbnail)])
            at += len(e.thumbnail)
        with self.hold_sync():
            self.history_thumbnails = b"".join(e.thumbnail for e in session.history)
            self.history = [
                {"prompt": e.prompt, "seed": e.seed, "words": e.words, "thumbnail": o}
                for e, o in zip(session.history, offsets, strict=True)
            ]
            if self.compare_to >= len(session.history):
                self.compare_to = -1

    def _fallback_bundle(self) -> dict[str, str]:
        maps = self._session.shown
        assert maps is not None
        return {
            "text/html": fallback_html(static_picture(maps, self.tau), self.prompt),
            "text/plain": f"DaamWidget({self.prompt!r})",
        }

    def _resolutions(self) -> list[str]:
        tc = self._session.trace
        return [f"{h}x{w}" for h, w in tc.resolutions] if tc is not None else []

    def _maps_at(self, prompt: str, steps: tuple[int, int] | None = None) -> HeatMaps:
        """The trace's maps at the chosen ``resolution`` and ``steps``."""
        tc = self._session.trace
        assert tc is not None
        steps = self.steps if steps is None else steps
        options: dict[str, Any] = {}
        if self.resolution != "all":
            options["resolutions"] = [_grid(self.resolution)]
        if steps != (0, 0):
            options["steps"] = range(*steps)
        return tc.heat_maps(0, prompt=prompt, **options)

    def _after_step(self, tc: Trace, prompt: str) -> None:
        """After each denoiser call: steps done (extra calls of a step leave them unchanged), and at most
        every ``LIVE_INTERVAL_S`` the maps so far."""
        session = self._session
        total = int(getattr(session.pipe, "num_timesteps", 0) or self.progress[1])
        self.progress = (tc.num_steps, total)
        now = _now()
        if now - session.last_live < LIVE_INTERVAL_S or tc.num_images == 0 or tc.num_steps >= total:
            return
        session.last_live, session.live = now, True
        so_far = tc.step_maps(0, prompt=prompt)
        if not so_far.words:
            return
        size, data, peaks = encode_stack(so_far.on_grid().sum(0), self.max_map_size)
        with self.hold_sync():
            if self.prompt != prompt or list(self.words) != list(so_far.words):
                self.prompt = prompt
                self.words = list(so_far.words)
                self.spans = spans_state(so_far)
                self.selected, self.pinned = None, []
            self.image = b""
            self.image_size = so_far.image_size
            self.map_size, self.maps, self.peaks = size, data, peaks
            self.num_steps, self.steps = 0, (0, 0)

    def _fail(self, error: BaseException) -> BaseException:
        with self.hold_sync():
            self.status = "error"
            self.error = f"{type(error).__name__}: {error}"
        return error

    # -- validation and reactions ------------------------------------------------------------------

    def _word_index(self, key: Any) -> int:
        maps = self._session.shown
        if maps is None:
            raise t.TraitError("there are no words yet: generate first")
        if isinstance(key, list):
            key = tuple(key)
        if isinstance(key, int) and not isinstance(key, bool):
            if not 0 <= key < len(self.words):
                raise t.TraitError(f"word index {key} is out of range; words are 0..{len(self.words) - 1}")
            return key
        if self._session.generating:  # live frames: words of the prompt being generated
            matches = [k for k, w in enumerate(self.words) if w.casefold() == str(key).casefold()]
            if matches:
                return matches[0]
        try:
            span = maps.span(key)
        except (KeyError, IndexError, TypeError) as error:
            raise t.TraitError(error.args[0] if error.args else str(error)) from None
        return [s for s in maps.spans if s.is_word].index(span)

    @t.validate("seed")
    def _valid_seed(self, proposal: t.Bunch) -> int:
        return _checked_seed(proposal.value)

    @t.validate("tau")
    def _valid_tau(self, proposal: t.Bunch) -> float:
        if not 0.0 <= proposal.value <= 1.0:  # False for NaN too
            raise t.TraitError(f"tau must be a number from 0 to 1, not {proposal.value!r}")
        return proposal.value

    @t.validate("selected")
    def _valid_selected(self, proposal: t.Bunch) -> int | None:
        return None if proposal.value is None else self._word_index(proposal.value)

    @t.validate("pinned")
    def _valid_pinned(self, proposal: t.Bunch) -> list[int]:
        return list(dict.fromkeys(self._word_index(k) for k in proposal.value))

    @t.validate("resolution")
    def _valid_resolution(self, proposal: t.Bunch) -> str:
        allowed = ["all", *self._resolutions()]
        if proposal.value not in allowed:
            raise t.TraitError(
                f"resolution must be one of {allowed}, not {proposal.value!r}"
                + ("" if self._session.trace else " (maps shown with from_heat_maps keep no per-layer sums)")
            )
        return proposal.value

    @t.validate("steps")
    def _valid_steps(self, proposal: t.Bunch) -> tuple[int, int]:
        start, stop = proposal.value
        if (start, stop) == (0, 0):
            return (0, 0)
        if self.num_steps == 0:
            raise t.TraitError(
                "these maps have no per-step record (shown with from_heat_maps): steps can only be (0, 0)"
            )
        if not 0 <= start < stop <= self.num_steps:
            raise t.TraitError(
                f"steps must be (start, stop) with 0 <= start < stop <= {self.num_steps}, or (0, 0) for all; "
                f"not {proposal.value!r}"
            )
        return (start, stop)

    @t.validate("compare_to")
    def _valid_compare_to(self, proposal: t.Bunch) -> int:
        n = len(self._session.history)
        if not -1 <= proposal.value < n:
            raise t.TraitError(
                f"compare_to must be -1 (none) or a history entry 0..{n - 1}, not {proposal.value!r}"
            )
        return proposal.value

    @t.observe("prompt")
    def _on_prompt(self, change: t.Bunch) -> None:
        self._session.asked = change.new  # `w.prompt = ...; w.generate()` generates the new prompt

    @t.observe("resolution")
    def _on_resolution(self, change: t.Bunch) -> None:
        session = self._session
        if session.generating or session.trace is None or session.shown is None:
            return
        try:
            selected, pinned, steps = self.selected, self.pinned, self.steps
            self._show(self._maps_at(self.prompt, steps=(0, 0)), self.prompt)
            with self.hold_sync():
                self.selected, self.pinned = selected, pinned
                self.steps = steps if steps[1] <= self.num_steps else (0, 0)
        except Exception as error:
            self._fail(error)

    @t.observe("compare_to")
    def _on_compare_to(self, change: t.Bunch) -> None:
        if change.new < 0:
            with self.hold_sync():
                self.other, self.other_image, self.other_maps = {}, b"", b""
            return
        e = self._session.history[change.new]
        with self.hold_sync():
            self.other_image, self.other_maps = e.image, e.maps
            self.other = {
                "prompt": e.prompt,
                "seed": e.seed,
                "words": e.words,
                "map_size": list(e.map_size),
                "peaks": e.peaks,
            }

    def _on_message(self, _widget: Any, content: dict, _buffers: list) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        try:
            if kind == "generate":
                self.generate(prompt=content.get("prompt"), seed=content.get("seed"))
            elif kind == "save_maps":
                self.save_maps()
            else:
                raise ValueError(f"unknown message {content!r}")
        except Exception as error:
            if self.status != "error":
                self._fail(error)
            traceback.print_exc()


def _grid(resolution: str) -> tuple[int, int]:
    h, w = (int(x) for x in resolution.split("x"))
    return h, w


def _default_steps(pipe: Any) -> int:
    """The pipeline's default number of inference steps (50 for SD, 28 for SD3 and Flux, 20 for PixArt)."""
    parameter = inspect.signature(type(pipe).__call__).parameters.get("num_inference_steps")
    return int(parameter.default) if parameter is not None and isinstance(parameter.default, int) else 50
