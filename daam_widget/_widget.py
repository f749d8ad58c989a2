"""``DaamWidget``: the notebook widget, a translation of a pipeline run or a ``HeatMaps`` into synced traits.

The browser side (``js/``, bundled into ``static/widget.js``) draws everything from these traits; what
travels and how is in ``_widget_data``, the generation in ``_widget_session``, the history strip in
``_widget_history``, the page and picture for readers without a kernel in ``_html_export``. Hovering,
pinning, the τ slider and scrubbing steps run in the browser with no kernel round trip; the kernel is
needed to generate, to change the layers summed, and to compare with an earlier generation.
"""

from __future__ import annotations

import os
import pathlib
import re
import traceback
from typing import Any

import anywidget
import numpy as np
import traitlets as t

from ._backbones import backbone_for
from ._concepts import check_concepts
from ._files import write_text_atomically
from ._heat_maps import HeatMaps
from ._html_export import fallback_bundle, standalone_page
from ._images import png
from ._prompts import check_pipeline_arguments, pipeline_arguments
from ._step_maps import StepMaps
from ._trace import Trace
from ._video_maps import VideoHeatMaps
from ._widget_data import (
    NO_STEPS,
    NO_VIDEO,
    encode_maps,
    encode_stack,
    encode_steps,
    encode_video,
    encode_video_stack,
    sent_size,
    spans_state,
)
from ._widget_history import NOT_COMPARED, Entry, History
from ._widget_session import GenerationSession, checked_seed, grid_of
from .plotting import save_animation

_STATIC = pathlib.Path(__file__).parent / "static"

_DEFERRED = ("selected", "pinned", "resolution", "layer", "steps")
"""Traits given at construction that need the first generation's words or trace."""


class DaamWidget(anywidget.AnyWidget):
    """Generate with a diffusers pipeline under the DAAM tracer and explore the heat maps of the words.

    ``DaamWidget(pipe, "a red circle and a blue square", num_inference_steps=30)`` generates once
    (keyword arguments go to the pipeline; trait names such as ``tau=`` set traits) and shows the image
    with the prompt's words: hover a word for its map, click to pin it, move τ for the Eq. 7 mask, scrub
    the steps to see when a word is placed. In a notebook the widget shows under its cell as soon as it
    starts, and the maps form while the image is generated (``show=False``: only where it is displayed).
    Every generation joins the history strip, and one can be compared with the current image side by
    side. ``time_resolved=True`` also keeps every layer's sums per step (``w.trace.heat_maps(layers=...,
    steps=...)``; memory grows with the steps). ``DaamWidget.from_heat_maps(maps)`` shows saved maps
    without a pipeline.

    On a text-to-video pipeline (Wan, CogVideoX, ...) it plays the clip: a play button and a frame
    scrubber (``frame``, ``fps``), the hovered word's map over the frame shown, the grid and the steps at
    that frame, and under the scrubber where the word's attention falls over the frames. Masks take τ of
    the word's peak over the clip (``per_frame=True``: of each frame's); ``save_animation`` writes a GIF.
    """

    _esm = _STATIC / "widget.js"

    prompt = t.Unicode(
        "", help="The prompt the maps belong to, as written; set it and `generate()` generates it."
    ).tag(sync=True)
    words = t.List(t.Unicode(), help="The prompt's words in order, repeats included (read-only).").tag(
        sync=True
    )
    spans = t.List(
        t.Dict(),
        help="Words and punctuation in text order: {text, start, end, word (index or None), available}.",
    ).tag(sync=True)
    words_text = t.Unicode(
        "", help="The text `spans` index: the prompt, or the concepts of concept maps (read-only)."
    ).tag(sync=True)
    image = t.Bytes(b"", help="The generated image as PNG bytes (empty while generating).").tag(sync=True)
    image_size = t.Tuple(t.Int(), t.Int(), default_value=(0, 0), help="(H, W) of the image.").tag(sync=True)
    maps = t.Bytes(
        b"",
        help="uint8 maps of all words, (words, h, w) row-major, each max-scaled to 255; a video's (latent "
        "frames, words, gh, gw) at `map_grid`.",
    ).tag(sync=True)
    map_size = t.Tuple(
        t.Int(), t.Int(), default_value=(0, 0), help="(h, w) of each map shown (of each map in `maps`)."
    ).tag(sync=True)
    peaks = t.List(
        t.Float(),
        help="Each word's raw Eq. 6 maximum (255 in `maps`), for the legend; a video's per latent frame and "
        "word.",
    ).tag(sync=True)
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
    layer = t.Unicode(
        "all",
        help="The attention layer whose maps are shown: 'all' or one of `layer_names` (Seg4Diff's view).",
    ).tag(sync=True)
    layer_names = t.List(t.Unicode(), help="The traced attention layers, in model order (read-only).").tag(
        sync=True
    )
    layer_focus = t.Bytes(
        b"",
        help="float32 (layers, words): how concentrated each word's attention is in each layer "
        "(Trace.layer_focus).",
    ).tag(sync=True)
    map_kind = t.Enum(
        ("daam", "renormalized", "concepts"),
        "daam",
        help="What the maps are: DAAM (Eq. 6), DAAM with each pixel shared among the content words alone, or "
        "the ConceptAttention maps of `concepts` (joint families).",
    ).tag(sync=True)
    concepts = t.List(
        t.Unicode(),
        help="Concepts (any words) for the concept maps; setting them generates again traced with them (the "
        "same seed: the same image) and shows their maps.",
    ).tag(sync=True)
    concepts_available = t.Bool(
        False, help="Whether the pipeline's family has concept maps (read-only)."
    ).tag(sync=True)
    map_note = t.Unicode("", help="What the maps shown are made of, when not DAAM's (read-only).").tag(
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
    latent_frames = t.Int(0, help="A video's latent frames, whose maps `maps` holds; 0 for an image.").tag(
        sync=True
    )
    map_grid = t.Tuple(
        t.Int(),
        t.Int(),
        default_value=(0, 0),
        help="(gh, gw) of a video's `maps`: its token grid, upsampled in the browser to `map_size`.",
    ).tag(sync=True)
    frame_sources = t.List(
        t.Int(), help="For each frame of a video, the latent frame its maps are (read-only); [] for an image."
    ).tag(sync=True)
    frame = t.Int(0, help="The video frame shown, from 0: the word, grid and step views show its maps.").tag(
        sync=True
    )
    video = t.Bytes(b"", help="A video's frames as JPEGs one after another (read-only).").tag(sync=True)
    video_frames = t.List(
        t.Tuple(t.Int(), t.Int()), help="[offset, length] of each frame in `video` (read-only)."
    ).tag(sync=True)
    frame_mass = t.Bytes(
        b"", help="float32 (words, frames): each word's share of its attention in each frame of a video."
    ).tag(sync=True)
    fps = t.Float(8.0, min=0.5, max=60.0, help="Frames a second when the video plays.").tag(sync=True)
    per_frame = t.Bool(
        False,
        help="Scale a video's maps, and their Eq. 7 masks, to each frame's own peak, not the word's peak "
        "over the clip.",
    ).tag(sync=True)
    history = t.List(
        t.Dict(),
        help="Generations of this widget, oldest first: {prompt, seed, words, thumbnail: [offset, length]}.",
    ).tag(sync=True)
    history_thumbnails = t.Bytes(b"", help="The history's thumbnails: PNGs one after another.").tag(sync=True)
    compare_to = t.Int(-1, help="The history entry shown beside the current image, or -1.").tag(sync=True)
    other = t.Dict(
        help="The compared entry: {prompt, seed, words, map_size, peaks, num_steps, step_grid}; {} when none."
    ).tag(sync=True)
    other_image = t.Bytes(b"", help="PNG of the compared entry.").tag(sync=True)
    other_maps = t.Bytes(b"", help="uint8 maps of the compared entry, as `maps`.").tag(sync=True)
    other_step_maps = t.Bytes(b"", help="The compared entry's `step_maps` (grid and steps in `other`).").tag(
        sync=True
    )
    other_step_scales = t.Bytes(b"", help="The compared entry's `step_scales`.").tag(sync=True)
    seed = t.Int(0, help="Seed of the last generation; `generate()` uses it when given none.").tag(sync=True)
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
        show: bool = True,
        **kwargs: Any,
    ) -> None:
        named = pipeline_arguments(pipe) if pipe is not None else []  # an image-to-video's `image`
        traits = {k: kwargs.pop(k) for k in list(kwargs) if k in self.class_traits() and k not in named}
        self._deferred = {k: traits.pop(k) for k in _DEFERRED if k in traits}
        if pipe is not None:
            check_pipeline_arguments(pipe, kwargs, others=list(self.class_traits()), owner="DaamWidget")
        elif prompt is not None:
            raise ValueError(
                "a prompt needs a pipeline: DaamWidget(pipe, prompt), or use from_heat_maps(maps)"
            )
        self._session = GenerationSession(pipe, kwargs, prompt, time_resolved)
        self._shown: HeatMaps | None = None
        """The maps ``_show`` drew: every step, at the chosen resolution, of the chosen kind."""
        self._base: HeatMaps | None = None
        """The DAAM maps ``_show`` drew them from."""
        self._reverting = False
        """``concepts`` is being put back after a refusal: nothing to generate."""
        self._same_image_again = False
        """A generation again with the same prompt and seed (for concepts): not a new history entry."""
        self._at_steps: tuple[tuple[int, int], HeatMaps] | None = None
        """``heat_maps`` for the steps chosen in the browser, made when asked for."""
        self._history = History()
        self._fallback: Any = None
        """The display handle of the static picture shown beside the widget."""
        self._shown_in_cell: int | None = None
        """The notebook cell (execution count) that displayed the widget while it generated."""
        super().__init__(**traits)
        self.can_generate = pipe is not None
        self.concepts_available = pipe is not None and _has_concept_maps(pipe)
        self.seed = seed
        self.on_msg(self._on_message)
        if pipe is None or prompt is None:
            return
        shell = _kernel_shell() if show else None
        if shell is not None:  # under its cell now, so the first generation shows as it runs
            _display_bundle(self._repr_mimebundle_())
            self._shown_in_cell = shell.execution_count
        try:
            self.generate(prompt)
        except Exception:  # shown in the widget (self.error); the widget is still returned
            return
        if shell is not None:
            self._show_fallback()

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
        if (
            self._shown is None
            or self._session.trace is None
            or self.steps == (0, 0)
            or self.map_kind != "daam"
        ):
            return self._shown
        if self._at_steps is None or self._at_steps[0] != self.steps:
            self._at_steps = (self.steps, self._session.maps_at(self.prompt, self.resolution, self.steps))
        return self._at_steps[1]

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
        seed = self.seed if seed is None else seed
        try:
            prompt, kwargs = session.prepare(prompt, seed, pipe_kwargs)
        except (ValueError, TypeError, t.TraitError) as error:
            self._fail(error)
            raise
        with self.hold_sync():
            self.error, self.message, self.status = "", "", "generating"
            self.progress = (0, session.total_steps(kwargs))
        live = False

        def on_frame(so_far: StepMaps) -> None:
            nonlocal live
            live = True
            self._show_so_far(so_far, prompt)

        try:
            session.run(prompt, kwargs, on_progress=self._on_progress, on_frame=on_frame)
            self.seed = seed
            if self.resolution not in ["all", *session.resolutions()]:
                self.resolution = "all"
            if self.layer not in ["all", *session.layer_names()]:
                self.layer = "all"
            self.steps = (0, 0)
            for key in ("resolution", "layer"):  # given at construction: checked now that the trace is known
                if key in self._deferred:
                    setattr(self, key, self._deferred.pop(key))
            self._show(session.maps_at(prompt, self.resolution, (0, 0), self.layer), prompt)
            if "steps" in self._deferred:
                self.steps = self._deferred.pop("steps")
            if not self._same_image_again:
                self._remember()
            if self._fallback is not None:  # the static picture shows the new image too
                self._fallback.update(self._fallback_bundle(), raw=True)
        except BaseException as error:  # Ctrl-C too: the widget must not stay "generating"
            if live and self._shown is not None:  # the last image's maps, not partial ones
                self._show(self._shown)
                session.asked = prompt
            self._fail(error)
            raise
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

    def save_animation(self, path: str | os.PathLike | None = None, word: Any = None) -> pathlib.Path:
        """Write a video with a word's map over every frame as an animated GIF or WebP (by the suffix;
        default ``daam_<first words>_<word>.gif``), as the widget draws it: its colour map, opacity, frame
        rate, scale (the clip's peak or each frame's) and Eq. 7 outline at τ. ``word``: a word key
        (default: the selected word)."""
        maps = self.heat_maps
        if not isinstance(maps, VideoHeatMaps):
            raise RuntimeError("save_animation needs a video's maps; this widget shows an image (save_maps)")
        key = self.selected if word is None else word
        if key is None:
            raise ValueError("choose the word: save_animation(word='dog'), or select one in the widget")
        name = self.words[key] if isinstance(key, int) else str(key[0] if isinstance(key, tuple) else key)
        slug = "_".join([*re.findall(r"\w+", self.prompt)[:5], *re.findall(r"\w+", name)]) or "maps"
        target = pathlib.Path(path if path is not None else f"daam_{slug}.gif")
        save_animation(
            maps,
            key,
            target,
            fps=self.fps,
            alpha=self.opacity,
            cmap=self.colormap,
            tau=self.tau,
            per_frame=self.per_frame,
        )
        self.message = f"saved the animation to {target.resolve()}"
        return target

    def save_html(self, path: str | os.PathLike, title: str | None = None) -> pathlib.Path:
        """Write one self-contained HTML file (script, image and maps inline; no network, no kernel).

        Hovering, pinning, the views, the τ slider, the step scrubber and the grid work in it; generating,
        other resolutions and choosing another history entry need the kernel and are hidden.
        """
        page = standalone_page(self.get_state(), title or f"DAAM: {self.prompt}")
        target = pathlib.Path(path)
        write_text_atomically(target, page)
        return target

    def _ipython_display_(self) -> None:
        """The widget, preceded by a static picture of its maps that the widget hides when it renders: a
        reader whose page cannot run the widget's scripts (an export opened offline) still sees the maps.
        Nothing when the cell displaying it is the one the widget showed itself under while generating."""
        shell = _kernel_shell()
        if shell is not None and self._shown_in_cell == shell.execution_count:
            return
        self._show_fallback()
        _display_bundle(self._repr_mimebundle_())

    # -- traits from domain objects ----------------------------------------------------------------

    def _show(self, maps: HeatMaps, prompt: str | None = None) -> None:
        """Show DAAM ``maps``, or what ``map_kind`` makes of them."""
        base = maps
        maps, note = self._of_kind(base)
        if isinstance(maps, VideoHeatMaps):
            shown = encode_video(maps, self.max_map_size)
        else:
            shown = _image_traits(*encode_maps(maps, self.max_map_size))
        self._shown, self._base, self._at_steps = maps, base, None
        prompt = prompt if prompt is not None else base.prompt
        whole = self.map_kind == "daam" and self.layer == "all"  # the step record sums every layer
        time_view = self._time_view(prompt) if whole else {"num_steps": 0, **NO_STEPS}
        with self.hold_sync():
            self.status, self.progress = "ready", (self.progress[1], self.progress[1])
            self.prompt = prompt
            self.words = list(maps.words)
            self.spans = spans_state(maps)
            self.words_text = maps.layout.text
            self.image = png(_poster(maps))
            self.image_size = maps.shape
            self._set_maps(shown)
            self.map_note = note
            self.layer_focus = self._layer_focus(prompt) if self.map_kind == "daam" else b""
            self.selected = None
            self.pinned = []
            self.resolutions = self._session.resolutions()
            self.layer_names = self._session.layer_names()
            for key, value in time_view.items():
                setattr(self, key, value)
            for key in ("selected", "pinned"):
                if key in self._deferred:
                    setattr(self, key, self._deferred.pop(key))

    def _of_kind(self, maps: HeatMaps) -> tuple[HeatMaps, str]:
        """The maps of ``map_kind`` for DAAM ``maps``, and what to say of them."""
        if self.map_kind == "renormalized":
            shares = maps.renormalized()
            dropped = shares.settings["dropped"]
            over = ", ".join(shares.settings["renormalized_over"])
            return shares, f"each pixel shared among {over} alone" + (
                f"; left out: {', '.join(dropped)}" if dropped else ""
            )
        if self.map_kind == "concepts":
            tc = self._session.trace
            if tc is None or tc.concepts is None:
                raise ValueError(
                    "concept maps come from a generation traced with concepts: type them in the concepts box "
                    "(w.concepts = ['cat', 'sky'])"
                )
            concept_maps = tc.concept_maps(0)
            blocks = ", ".join(concept_maps.settings["layers"])
            return concept_maps, f"ConceptAttention maps of the joint blocks {blocks}, over every step"
        return maps, ""

    def _layer_focus(self, prompt: str) -> bytes:
        tc = self._session.trace
        if tc is None or tc.num_images == 0:
            return b""
        return tc.layer_focus(0, prompt=prompt).numpy().astype("<f4").tobytes()

    def _time_view(self, prompt: str) -> dict[str, Any]:
        tc = self._session.trace
        if tc is None or tc.num_images == 0:
            return {"num_steps": 0, **NO_STEPS}
        steps = tc.step_maps(0, prompt=prompt)
        grids = None if self.resolution == "all" else [grid_of(self.resolution)]
        return {"num_steps": steps.num_steps, **encode_steps(steps, grids)}

    def _show_so_far(self, so_far: StepMaps, prompt: str) -> None:
        """A live frame while the image is generated: Eq. 6 over the steps done, upsampled straight to the
        size the maps are sent at."""
        size = sent_size(so_far.image_size, self.max_map_size)
        frames = so_far.latent_frames
        if frames is None:
            shown = _image_traits(*encode_stack(so_far.total(size=size).clamp_(min=0), self.max_map_size))
        else:  # no decoded frames yet: each latent frame is a frame
            sums = so_far.on_grid().sum(0)
            shown = {**NO_VIDEO, **encode_video_stack(sums, size), "frame_sources": list(range(frames))}
        with self.hold_sync():
            if self.prompt != prompt or list(self.words) != list(so_far.words):
                self.prompt = prompt
                self.words = list(so_far.words)
                self.spans = spans_state(so_far)
                self.words_text = so_far.layout.text
                self.selected, self.pinned = None, []
            self.image = b""
            self.image_size = so_far.image_size
            self._set_maps(shown)
            self.num_steps, self.steps = 0, (0, 0)

    def _set_maps(self, shown: dict[str, Any]) -> None:
        """Set the maps' traits (``_image_traits`` or ``encode_video``'s), keeping the frame shown in the
        clip."""
        for key, value in shown.items():
            setattr(self, key, value)
        self.frame = min(self.frame, max(len(self.frame_sources) - 1, 0))

    def _on_progress(self, done: int, total: int) -> None:
        self.progress = (done, total)

    def _remember(self) -> None:
        """Add the shown generation to the history strip."""
        assert self._shown is not None
        still = self._still_traits()
        entry = Entry(
            prompt=self.prompt,
            seed=self.seed,
            words=list(self.words),
            image=self.image,
            thumbnail=png(_poster(self._shown), longer_side=64),
            num_steps=self.num_steps,
            step_grid=(self.step_grid[0], self.step_grid[1]),
            **still,
        )
        self._history.add(entry, self.max_history)
        with self.hold_sync():
            for key, value in self._history.strip().items():
                setattr(self, key, value)
            if self.compare_to >= len(self._history):
                self.compare_to = -1

    def _still_traits(self) -> dict[str, Any]:
        """``maps``, ``map_size``, ``peaks``, ``step_maps`` and ``step_scales`` of the image, or of a video's
        middle frame (the one its history entry and static picture show), laid out as an image's."""
        kept = {"step_maps": self.step_maps, "step_scales": self.step_scales}
        if not self.latent_frames:
            return {"maps": self.maps, "map_size": self.map_size, "peaks": list(self.peaks), **kept}
        assert self._shown is not None
        size, data, peaks = encode_maps(_still(self._shown), self.max_map_size)
        source = self.frame_sources[len(self.frame_sources) // 2]
        steps = {key: _block(value, self.latent_frames, source) for key, value in kept.items()}
        return {"maps": data, "map_size": size, "peaks": peaks, **steps}

    def _fallback_bundle(self) -> dict[str, str]:
        assert self._shown is not None
        return fallback_bundle(_still(self._shown), self.tau, self.prompt)

    def _show_fallback(self) -> None:
        if self._shown is not None:
            from IPython.display import display

            self._fallback = display(self._fallback_bundle(), raw=True, display_id=True)

    def _fail(self, error: BaseException) -> None:
        with self.hold_sync():
            self.status = "error"
            self.error = f"{type(error).__name__}: {error}"

    # -- validation and reactions ------------------------------------------------------------------

    def _word_index(self, key: Any) -> int:
        maps = self._shown
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
        return checked_seed(proposal.value)

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
        allowed = ["all", *self._session.resolutions()]
        if proposal.value not in allowed:
            raise t.TraitError(
                f"resolution must be one of {allowed}, not {proposal.value!r}"
                + ("" if self._session.trace else " (maps shown with from_heat_maps keep no per-layer sums)")
            )
        return proposal.value

    @t.validate("frame")
    def _valid_frame(self, proposal: t.Bunch) -> int:
        frames = len(self.frame_sources)
        if not 0 <= proposal.value < max(frames, 1):
            raise t.TraitError(
                f"frame must be 0..{frames - 1}, not {proposal.value!r}"
                if frames
                else f"frame must be 0: these maps are an image's, not a video's (not {proposal.value!r})"
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
        n = len(self._history)
        if not -1 <= proposal.value < n:
            raise t.TraitError(
                f"compare_to must be -1 (none) or a history entry 0..{n - 1}, not {proposal.value!r}"
            )
        return proposal.value

    @t.observe("prompt")
    def _on_prompt(self, change: t.Bunch) -> None:
        self._session.asked = change.new  # `w.prompt = ...; w.generate()` generates the new prompt

    @t.validate("layer")
    def _valid_layer(self, proposal: t.Bunch) -> str:
        allowed = self._session.layer_names()
        if proposal.value != "all" and proposal.value not in allowed:
            raise t.TraitError(
                f"layer must be 'all' or one of the traced layers {allowed}, not {proposal.value!r}"
                + ("" if self._session.trace else " (maps shown with from_heat_maps keep no per-layer sums)")
            )
        return proposal.value

    @t.observe("resolution", "layer")
    def _on_resolution(self, change: t.Bunch) -> None:
        session = self._session
        if session.generating or session.trace is None or self._shown is None:
            return
        try:
            selected, pinned, steps = self.selected, self.pinned, self.steps
            self._show(session.maps_at(self.prompt, self.resolution, (0, 0), self.layer), self.prompt)
            with self.hold_sync():
                self.selected, self.pinned = selected, pinned
                self.steps = steps if steps[1] <= self.num_steps else (0, 0)
        except Exception as error:
            self._fail(error)

    @t.validate("concepts")
    def _valid_concepts(self, proposal: t.Bunch) -> list[str]:
        try:
            return check_concepts(proposal.value) if proposal.value else []
        except (TypeError, ValueError) as error:
            raise t.TraitError(str(error)) from None

    @t.observe("concepts")
    def _on_concepts(self, change: t.Bunch) -> None:
        session = self._session
        if self._reverting:
            return
        if change.new and session.pipe is not None:
            try:
                backbone_for(session.pipe).concept_blocks()
            except (TypeError, ValueError) as error:
                self._reverting = True
                try:
                    self.concepts = change.old
                finally:
                    self._reverting = False
                self._fail(error)
                return
        session.concepts = list(change.new) or None
        if self._base is None and change.new:  # given at construction: the first maps are theirs
            self.map_kind = "concepts"
        if session.pipe is None or session.generating or self._base is None:
            return
        if not change.new and self.map_kind == "concepts":
            self.map_kind = "daam"
        self._same_image_again = True
        try:
            self.generate()  # the same prompt and seed: the same image, traced with the concepts
        except Exception:  # shown in the widget (generate's error)
            return
        finally:
            self._same_image_again = False
        if change.new:
            self.map_kind = "concepts"

    @t.observe("map_kind")
    def _on_map_kind(self, change: t.Bunch) -> None:
        if self._session.generating or self._base is None:
            return
        try:
            self._show(self._base, self.prompt)
        except Exception as error:
            self.map_kind = change.old
            self._fail(error)

    @t.observe("compare_to")
    def _on_compare_to(self, change: t.Bunch) -> None:
        compared = NOT_COMPARED if change.new < 0 else self._history[change.new].compared()
        with self.hold_sync():
            for key, value in compared.items():
                setattr(self, key, value)

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


def _image_traits(size: tuple[int, int], data: bytes, peaks: list[float]) -> dict[str, Any]:
    """An image's maps as the traits ``_set_maps`` sets (a video's come from ``encode_video``)."""
    return {"map_size": size, "maps": data, "peaks": peaks, **NO_VIDEO}


def _poster(maps: HeatMaps) -> np.ndarray | None:
    """The image, or a video's middle frame: what the image trait and a history thumbnail show."""
    if isinstance(maps, VideoHeatMaps):
        return None if maps.video is None else maps.video[maps.num_frames // 2]
    return maps.image


def _still(maps: HeatMaps) -> HeatMaps:
    """The image's maps, or those of a video's middle frame (its poster)."""
    return maps.frame(maps.num_frames // 2) if isinstance(maps, VideoHeatMaps) else maps


def _block(data: bytes, blocks: int, index: int) -> bytes:
    """Block ``index`` of ``blocks`` equal blocks of ``data`` (one latent frame's part of a video trait)."""
    size = len(data) // blocks
    return data[index * size : (index + 1) * size]


def _has_concept_maps(pipe: Any) -> bool:
    try:
        backbone_for(pipe).concept_blocks()
    except (TypeError, ValueError):  # none, or not a pipeline the tracer knows (generating says so)
        return False
    return True


def _kernel_shell() -> Any:
    """IPython's shell where this runs in a notebook's kernel (so ``display`` reaches a cell), else None."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return shell if getattr(shell, "kernel", None) is not None else None


def _display_bundle(bundle: Any) -> None:
    from IPython.display import display

    data, metadata = bundle if isinstance(bundle, tuple) else (bundle, {})
    display(data, metadata=metadata, raw=True)
