"""``DaamWidget``: the notebook widget. Translates a pipeline run or a ``HeatMaps`` into synced traits.

The browser side (``js/``, bundled into ``static/widget.js``) draws everything from these traits. Maps
travel as one binary buffer, ``maps``: word ``k``'s map is bytes ``[k*h*w, (k+1)*h*w)`` of a row-major
``(h, w) = map_size`` uint8 array, scaled so its maximum is 255; ``h, w`` is the image size capped at
``max_map_size`` (256) on the longer side, so a word costs at most 65,536 bytes (512 x 512 SD images:
256 x 256). Hovering swaps maps in the browser with no kernel round trip.
"""

from __future__ import annotations

import base64
import difflib
import html
import inspect
import io
import json
import os
import pathlib
import re
import traceback
from typing import Any

import anywidget
import numpy as np
import torch
import torch.nn.functional as F
import traitlets as t

from ._heat_maps import HeatMaps
from ._trace import Trace, trace

_STATIC = pathlib.Path(__file__).parent / "static"

_BINARY = ("image", "maps")
_WITHOUT_KERNEL = {
    "has_kernel": False,
    "can_generate": False,
    "resolutions": [],
    "num_steps": 0,
    "status": "ready",
    "progress": (0, 0),
    "error": "",
    "message": "",
}


class DaamWidget(anywidget.AnyWidget):
    """Generate with a diffusers pipeline under the DAAM tracer and explore the heat maps of the words.

    ``DaamWidget(pipe, "a dog on a hat", num_inference_steps=30)`` generates once (keyword arguments go
    to the pipeline; trait names such as ``tau=`` set traits) and shows the image with the prompt's
    words: hover a word for its map, click to pin it, move tau for the Eq. 7 mask.
    ``time_resolved=True`` keeps every step's sums so that ``steps`` can choose a range of denoising
    steps (memory grows with the steps). ``DaamWidget.from_heat_maps(maps)`` shows saved or precomputed
    maps without a pipeline.
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
    image = t.Bytes(b"", help="The generated image as PNG bytes (empty when there is none).").tag(sync=True)
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
    view = t.Enum(("heat", "mask", "both"), "heat", help="Heat map, Eq. 7 mask, or both.").tag(sync=True)
    opacity = t.Float(0.6, min=0.0, max=1.0, help="Opacity of the heat-map colours.").tag(sync=True)
    colormap = t.Enum(("inferno", "viridis", "jet"), "inferno", help="Colour map of the heat map.").tag(
        sync=True
    )
    compare = t.Enum(("side", "argmax"), "side", help="How pinned words are compared.").tag(sync=True)
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
        help="UNet evaluations summed, [start, stop) from 0; (0, 0): all. Needs time_resolved=True.",
    ).tag(sync=True)
    num_steps = t.Int(
        0, help="UNet evaluations kept step by step (time_resolved=True), else 0 (read-only)."
    ).tag(sync=True)
    seed = t.Int(0, help="Seed of the last generation.").tag(sync=True)
    status = t.Enum(("idle", "generating", "ready", "error"), "idle").tag(sync=True)
    progress = t.Tuple(t.Int(), t.Int(), default_value=(0, 0), help="(step, steps) while generating.").tag(
        sync=True
    )
    error = t.Unicode("", help="The last error, shown in the widget.").tag(sync=True)
    message = t.Unicode("", help="The last status message (e.g. where the maps were saved).").tag(sync=True)
    can_generate = t.Bool(False, help="True when a pipeline is attached.").tag(sync=True)
    max_map_size = t.Int(256, min=1, help="Longer side of the maps sent to the browser, in pixels.")

    _heat_maps: HeatMaps | None = None
    _trace: Trace | None = None
    _asked: str | None = None
    _quiet = False

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
        chosen = {k: traits.pop(k) for k in ("selected", "pinned", "resolution", "steps") if k in traits}
        if pipe is not None:
            _check_pipeline_arguments(pipe, kwargs, traits=True)
        self._time_resolved = time_resolved
        super().__init__(**traits)
        self._pipe = pipe
        self._pipe_kwargs = kwargs
        self._chosen = chosen
        self._asked = prompt  # the last prompt asked for, shown or not (a failed first run shows none)
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
        """The ``HeatMaps`` shown (at the chosen resolution); None before the first generation."""
        return self._heat_maps

    @property
    def trace(self) -> Trace | None:
        """The tracer of the last generation (per-layer sums), or None for ``from_heat_maps``."""
        return self._trace

    def generate(self, prompt: str | None = None, seed: int | None = None, **pipe_kwargs: Any) -> HeatMaps:
        """Generate again under the tracer and show the new maps; progress and errors show in the widget.

        ``pipe_kwargs`` update the keyword arguments given at construction (``num_inference_steps=``,
        ``guidance_scale=``, ``height=``, ...). Errors are shown in the widget and raised.
        """
        if self._pipe is None:
            raise RuntimeError(
                "this widget shows saved maps and has no pipeline; use DaamWidget(pipe, prompt)"
            )
        prompt = self._asked if prompt is None else prompt
        self._asked = prompt
        if not isinstance(prompt, str) or not prompt.strip():
            raise self._fail(ValueError(f"the prompt must be a non-empty string, not {prompt!r}"))
        seed = self.seed if seed is None else int(seed)
        _check_pipeline_arguments(self._pipe, pipe_kwargs)
        self._pipe_kwargs.update(pipe_kwargs)
        kwargs = dict(self._pipe_kwargs)
        kwargs.setdefault("generator", torch.Generator("cpu").manual_seed(seed))
        with self.hold_sync():
            self.error, self.message, self.status = "", "", "generating"
            self.progress = (0, int(kwargs.get("num_inference_steps", _default_steps(self._pipe))))
        try:
            with trace(self._pipe, time_resolved=self._time_resolved) as tc:
                progress = tc.backbone.denoiser.register_forward_hook(lambda *_: self._count_step(tc))
                try:
                    self._pipe(prompt, **kwargs)
                finally:
                    progress.remove()
            self._trace = tc
            self.seed = seed
            self._quiet = True
            if self.resolution not in ["all", *self._resolutions()]:
                self.resolution = "all"
            self.steps = (0, 0)
            maps = self._maps_at(prompt)
            self.num_steps = int(maps.settings.get("num_steps", 0)) if self._time_resolved else 0
            pending = self.__dict__.get("_chosen", {})
            chosen = {k: pending.pop(k) for k in ("resolution", "steps") if k in pending}
            if chosen:  # given at construction: checked now that the trace is known
                for key, value in chosen.items():
                    setattr(self, key, value)
                maps = self._maps_at(prompt)
            self._show(maps, prompt)
        except Exception as error:
            self._fail(error)
            raise
        finally:
            self._quiet = False
        return self._heat_maps  # type: ignore[return-value]

    def save_maps(self, path: str | os.PathLike | None = None) -> pathlib.Path:
        """Write the shown maps to a safetensors file (default: ``daam_<first words>.safetensors``)."""
        if self._heat_maps is None:
            raise RuntimeError("there are no maps to save yet")
        slug = "_".join(re.findall(r"\w+", self.prompt)[:5]) or "maps"
        target = pathlib.Path(path if path is not None else f"daam_{slug}.safetensors")
        self._heat_maps.save(target)
        self.message = f"saved maps to {target.resolve()}"
        return target

    def save_html(self, path: str | os.PathLike, title: str | None = None) -> pathlib.Path:
        """Write one self-contained HTML file (script, image and maps inline; no network, no kernel).

        Hovering, pinning, the views and the tau slider work in it; generating and other resolutions need
        the kernel and are hidden.
        """
        state = {k: v for k, v in self.get_state().items() if not k.startswith("_")} | _WITHOUT_KERNEL
        buffers = {k: base64.b64encode(getattr(self, k)).decode("ascii") for k in _BINARY}
        for k in _BINARY:
            state.pop(k, None)
        page = _HTML.format(
            title=html.escape(title or f"DAAM: {self.prompt}"),
            script=_script_safe((_STATIC / "standalone.js").read_text(encoding="utf-8")),
            state=_json_in_script(state),
            buffers=_json_in_script(buffers),
        )
        target = pathlib.Path(path)
        target.write_text(page, encoding="utf-8")
        return target

    # -- traits from domain objects ----------------------------------------------------------------

    def _show(self, maps: HeatMaps, prompt: str | None = None) -> None:
        size, data, peaks = _encode_maps(maps, self.max_map_size)
        word_spans = [s for s in maps.spans if s.is_word]
        index = {id(s): k for k, s in enumerate(word_spans)}
        self._heat_maps = maps
        with self.hold_sync():
            self.prompt = prompt if prompt is not None else maps.prompt
            self.words = list(maps.words)
            self.spans = [
                {
                    "text": s.text,
                    "start": s.start,
                    "end": s.end,
                    "word": index.get(id(s)),
                    "available": bool(s.available),
                }
                for s in maps.spans
            ]
            self.image = _png(maps.image)
            self.image_size = maps.shape
            self.map_size = size
            self.maps = data
            self.peaks = peaks
            self.selected = None
            self.pinned = []
            self.resolutions = self._resolutions()
            self.num_steps = int(maps.settings.get("num_steps", 0)) if self._kept_steps() else 0
            self.status, self.progress = "ready", (self.progress[1], self.progress[1])
            for key, value in self.__dict__.pop("_chosen", {}).items():  # selected, pinned
                setattr(self, key, value)

    def _resolutions(self) -> list[str]:
        return [f"{h}x{w}" for h, w in self._trace.resolutions] if self._trace is not None else []

    def _kept_steps(self) -> bool:
        return self._trace is not None and self._time_resolved

    def _maps_at(self, prompt: str) -> HeatMaps:
        """The trace's maps at the chosen ``resolution`` and ``steps``."""
        assert self._trace is not None
        options: dict[str, Any] = {}
        if self.resolution != "all":
            h, w = (int(x) for x in self.resolution.split("x"))
            options["resolutions"] = [(h, w)]
        if self.steps != (0, 0):
            options["steps"] = range(*self.steps)
        return self._trace.heat_maps(0, prompt=prompt, **options)

    def _count_step(self, tc: Trace) -> None:
        """After each denoiser call: steps done of the run (extra calls of a step leave it unchanged)."""
        total = int(getattr(self._pipe, "num_timesteps", 0) or self.progress[1])
        self.progress = (tc.num_steps, total)

    def _fail(self, error: Exception) -> Exception:
        with self.hold_sync():
            self.status = "error"
            self.error = f"{type(error).__name__}: {error}"
        return error

    # -- validation and reactions ------------------------------------------------------------------

    def _word_index(self, key: Any) -> int:
        if self._heat_maps is None:
            raise t.TraitError("there are no words yet: generate first")
        if isinstance(key, list):
            key = tuple(key)
        if isinstance(key, int) and not isinstance(key, bool):
            if not 0 <= key < len(self.words):
                raise t.TraitError(f"word index {key} is out of range; words are 0..{len(self.words) - 1}")
            return key
        try:
            span = self._heat_maps.span(key)
        except (KeyError, IndexError, TypeError) as error:
            raise t.TraitError(error.args[0] if error.args else str(error)) from None
        return [s for s in self._heat_maps.spans if s.is_word].index(span)

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
                + ("" if self._trace else " (maps shown with from_heat_maps keep no per-layer sums)")
            )
        return proposal.value

    @t.validate("steps")
    def _valid_steps(self, proposal: t.Bunch) -> tuple[int, int]:
        start, stop = proposal.value
        if (start, stop) == (0, 0):
            return (0, 0)
        if not self._kept_steps():
            raise t.TraitError(
                "choosing steps needs the maps of every step: DaamWidget(pipe, prompt, time_resolved=True)"
            )
        if not 0 <= start < stop <= self.num_steps:
            raise t.TraitError(
                f"steps must be (start, stop) with 0 <= start < stop <= {self.num_steps}, or (0, 0) for all; "
                f"not {proposal.value!r}"
            )
        return (start, stop)

    @t.observe("prompt")
    def _on_prompt(self, change: t.Bunch) -> None:
        self._asked = change.new  # `w.prompt = ...; w.generate()` generates the new prompt

    @t.observe("resolution", "steps")
    def _on_aggregation(self, change: t.Bunch) -> None:
        if self._quiet or self._trace is None or self._heat_maps is None:
            return
        try:
            selected, pinned = self.selected, self.pinned
            self._show(self._maps_at(self.prompt), self.prompt)
            with self.hold_sync():
                self.selected, self.pinned = selected, pinned
        except Exception as error:
            self._fail(error)

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


def _encode_maps(maps: HeatMaps, max_size: int) -> tuple[tuple[int, int], bytes, list[float]]:
    """Every word's map as uint8 ``(words, h, w)`` scaled to max 255, its raw maxima, and ``(h, w)``."""
    H, W = maps.shape
    scale = min(1.0, max_size / max(H, W))
    h, w = max(1, round(H * scale)), max(1, round(W * scale))
    word_spans = [s for s in maps.spans if s.is_word]
    stack = torch.zeros((len(word_spans), H, W))
    for k, span in enumerate(word_spans):
        if span.available:
            stack[k] = torch.from_numpy(maps.soft(k))
    peaks = stack.flatten(1).amax(1) if len(word_spans) else torch.zeros(0)
    if (h, w) != (H, W):
        stack = F.interpolate(stack[None], size=(h, w), mode="area")[0]
    top = stack.flatten(1).amax(1).clamp_min(1e-30)[:, None, None]
    data = (stack / top * 255).round().clamp(0, 255).to(torch.uint8).numpy()
    return (h, w), data.tobytes(), [float(p) for p in peaks]


def _png(image: np.ndarray | None) -> bytes:
    if image is None:
        return b""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _script_safe(text: str) -> str:
    """Script text that cannot close or open a tag inside <script> (``</script>``, ``<!--``)."""
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def _json_in_script(value: Any) -> str:
    """JSON with ``<``, ``>`` and ``&`` escaped (``\\u003c``...): user text stays data inside <script>."""
    text = json.dumps(value)
    for char in "<>&\u2028\u2029":
        text = text.replace(char, f"\\u{ord(char):04x}")
    return text


_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; \
style-src 'unsafe-inline'; img-src blob: data:">
<title>{title}</title>
</head>
<body>
<div id="daam-widget"></div>
<script>{script}</script>
<script>
DaamWidget.mount(document.getElementById("daam-widget"), {state}, {buffers});
</script>
</body>
</html>
"""


def _default_steps(pipe: Any) -> int:
    """The pipeline's default number of inference steps (50 for SD, 28 for SD3 and Flux, 20 for PixArt)."""
    parameter = inspect.signature(type(pipe).__call__).parameters.get("num_inference_steps")
    return int(parameter.default) if parameter is not None and isinstance(parameter.default, int) else 50


def _check_pipeline_arguments(pipe: Any, kwargs: dict[str, Any], traits: bool = False) -> None:
    """Refuse keyword arguments the pipeline's ``__call__`` does not name: diffusers' pipelines take
    ``**kwargs`` and would drop a misspelt one (``num_inference_step=5``) without a word."""
    parameters = inspect.signature(type(pipe).__call__).parameters
    named = [n for n, p in parameters.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)][1:]
    candidates = named + (list(DaamWidget.class_traits()) if traits else [])
    for key in kwargs:
        if key not in named:
            close = difflib.get_close_matches(key, candidates)
            hint = f"; did you mean {close[0]!r}?" if close else "."
            raise TypeError(
                f"{key!r} is not an argument of {type(pipe).__name__} or of DaamWidget{hint} "
                f"The pipeline takes: {', '.join(n for n in named if n != 'prompt')}"
            )
