"""``trace(pipe)``: record DAAM heat maps while a diffusers text-to-image pipeline generates.

Everything is learnt through public seams, never by patching pipeline methods; what differs between
denoiser families (UNet, SD3, Flux, PixArt, Sana) is in ``_backbones``:

- attention probabilities: recorders on the family's text-attention modules (``_capture``);
- steps, token grid, the batch and its guidance layout: a forward pre-hook on the denoiser, every call of
  which is one step, the unconditional call of a step, or an extra call (``_runs``);
- which token ids produced which text keys: forward hooks on the text encoders, matched by value
  (``_encodings``);
- the decoded image: a forward hook on the VAE decoder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any, get_args

import torch

from ._aggregate import AttentionSums, StepRecord, upsample_once
from ._backbones import DenoiserCall, SoftmaxOver, backbone_for
from ._capture import recording
from ._concepts import ConceptStreams
from ._encodings import EncoderCall, encoder_hook, window_behind
from ._grid_sums import GridSums
from ._heat_maps import HeatMaps
from ._layer_calls import LayerCall, LayerCalls
from ._probabilities import AttentionInputs, TextAttention, probabilities_together
from ._runs import Generation
from ._step_maps import StepMaps
from ._text_streams import TextStream
from ._video_maps import VideoHeatMaps
from ._words import PromptLayout, StreamText, align_streams

Steps = range | slice | tuple[int, int]

WATCHED_WHEN_COMPILED = (
    "{} is traced at the processors' attention call, which torch.compile cannot compile through: "
    "while traced, the compiled denoiser runs as compiled pieces between its traced attention layers "
    "(compiled once, not at every step), slower than compiled whole; see docs/tracing.md, 'A compiled "
    "denoiser'"
)


def _steps_filter(steps: Steps | None) -> range | None:
    if steps is None:
        return None
    if isinstance(steps, tuple):
        if len(steps) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) for s in steps):
            raise ValueError(f"steps as a tuple is (start, stop) of whole steps from 0, not {steps!r}")
        steps = range(*steps)
    if isinstance(steps, slice):
        steps = range(steps.start or 0, steps.stop if steps.stop is not None else 1 << 30, steps.step or 1)
    if not isinstance(steps, range) or steps.start < 0 or steps.stop < 0:
        raise ValueError(
            f"steps must be a range, slice or (start, stop) of non-negative steps, not {steps!r}"
        )
    return steps


def _matching(names: Sequence[str], prefixes: str | Sequence[str]) -> list[str]:
    """The layer names that start with one of ``prefixes`` (a string is one prefix), in order."""
    prefixes = [prefixes] if isinstance(prefixes, str) else list(prefixes)
    return [n for n in names if any(n.startswith(p) for p in prefixes)]


class Trace:
    """Record DAAM heat maps of what ``pipe`` generates inside the ``with`` block.

    >>> with trace(pipe) as tc:
    ...     out = pipe("a dog on a hat")
    >>> maps = tc.heat_maps()          # first image; tc.heat_maps(i) for image i
    >>> maps["dog"], maps.mask("dog", tau=0.4)

    Parameters
    ----------
    pipe:
        A supported diffusers pipeline (or a subclass): ``StableDiffusionPipeline``,
        ``StableDiffusionXLPipeline``, ``StableDiffusion3Pipeline``, ``FluxPipeline``,
        ``PixArtAlphaPipeline``, ``PixArtSigmaPipeline`` or ``SanaPipeline``. For SDXL, maps are indexed by
        the first tokenizer (both split text the same way). For SD3, text keys are CLIP's 77 positions then
        T5's: a word's map sums both (``heat_maps(stream=...)`` picks one).
    layers:
        Record only attention layers whose names start with one of these (``"up_blocks"``,
        ``"single_transformer_blocks"``, a full name from ``Trace.layer_names``). Default: all.
    heads:
        Sum only these head indices in every layer. Default: all heads.
    steps:
        Record only these denoising steps (from 0), e.g. ``range(10, 20)``.
    time_resolved:
        Also keep each step's maps so ``heat_maps(steps=...)`` can choose steps afterwards. Memory then grows
        with the number of steps (see ``AttentionSums``); by default it does not.
    per_step:
        Keep a compact record of every step (the words' tokens only, each resolution's layers summed,
        float16; about 0.1 MB per image and step on SD at 512 px, see ``StepRecord``): ``step_maps(i)``
        gives maps through time, and ``heat_maps(steps=...)`` works without ``time_resolved``.
    keep_negative:
        Also record the unconditional prediction (the negative prompt): the first half of a guidance batch,
        or Flux's separate true-CFG call.
    guidance:
        Whether the denoiser batch is ``[unconditional, conditional]``. Default: read from the pipeline
        during its call. Pass ``False`` when you call the denoiser yourself on conditional rows only.
    softmax_over:
        On joint-attention models (SD3, Flux), where one softmax runs over image and text keys:
        ``"text"`` (default) renormalises each image query's attention over the text keys only, the analogue
        of a UNet's cross-attention; ``"all"`` keeps the model's own probabilities, which are ``"text"`` times
        the share of the query's attention that goes to text. The same on cross-attention models.
    concepts:
        Also record ConceptAttention maps of these concepts (any words; ``concept_maps(i)``), on joint
        families (Flux.1, Flux.2, SD3/3.5, Qwen-Image, Chroma, LongCat-Image, Ovis-Image). The image is
        unchanged. See docs/tracing.md, "Concept maps".
    concept_layers:
        The joint blocks whose concept maps are summed (name prefixes such as ``"transformer_blocks.18"``).
        Default: the last four (Flux.1's 15 to 18, as the paper's results use).
    on_step:
        Called with the trace after each denoising step's call of the denoiser (its attention already
        added: ``num_steps`` counts it, and ``step_maps`` holds it with ``per_step=True``), for progress
        and maps that form while the image is generated. Not called after a step's unconditional call of
        its own or an extra call. What it raises stops the generation.

    The attention processors are restored, as the same objects, on every exit from the block.
    """

    def __init__(
        self,
        pipe: Any,
        *,
        layers: Sequence[str] | None = None,
        heads: Sequence[int] | None = None,
        steps: Steps | None = None,
        time_resolved: bool = False,
        per_step: bool = False,
        keep_negative: bool = False,
        guidance: bool | None = None,
        softmax_over: SoftmaxOver = "text",
        concepts: Sequence[str] | None = None,
        concept_layers: Sequence[str] | None = None,
        on_step: Callable[[Trace], object] | None = None,
    ) -> None:
        self.backbone = backbone_for(pipe)
        if softmax_over not in get_args(SoftmaxOver):
            raise ValueError(f"softmax_over must be 'text' or 'all', not {softmax_over!r}")
        self.pipe = pipe
        modules = self.backbone.attention_layers()
        available = list(modules)
        if layers is None:
            self.layer_names = available
        else:
            if isinstance(layers, str):
                layers = [layers]
            if not isinstance(layers, Sequence) or not all(isinstance(n, str) for n in layers):
                raise TypeError(
                    f"layers must be a name prefix or a list of them (strings, as in Trace.layer_names), "
                    f"not {layers!r}"
                )
            self.layer_names = _matching(available, layers)
            if not self.layer_names:
                raise ValueError(
                    f"layers={list(layers)!r} matches no cross-attention layer; layer names are: "
                    + ", ".join(available)
                )
        self._modules = {n: modules[n] for n in self.layer_names}
        if heads is not None:
            fewest = min(modules[n].heads for n in self.layer_names)
            allowed = f"distinct whole head indices in 0..{fewest - 1} (the fewest heads of a layer)"
            if not isinstance(heads, Sequence) or isinstance(heads, str):
                raise TypeError(f"heads must be a list of {allowed}, not {heads!r}")
            if (
                not heads
                or not all(isinstance(h, int) and not isinstance(h, bool) and 0 <= h < fewest for h in heads)
                or len(set(heads)) != len(heads)
            ):
                raise ValueError(f"heads must be {allowed}, not {list(heads)!r}")
            heads = list(heads)
        self.heads = heads
        self.steps = _steps_filter(steps)
        self.time_resolved = time_resolved
        self.per_step = per_step
        self.keep_negative = keep_negative
        self.guidance = guidance
        self.softmax_over: SoftmaxOver = softmax_over
        if on_step is not None and not callable(on_step):
            raise TypeError(f"on_step must be a function of the trace, not {on_step!r}")
        self.on_step = on_step
        self._concepts: ConceptStreams | None = None
        if concepts is not None:
            if self.backbone.compiled:
                raise ValueError(
                    "concept maps are not recorded in a compiled denoiser; trace the model uncompiled"
                )
            self._concepts = ConceptStreams(self.backbone, concepts, concept_layers)
        elif concept_layers is not None:
            raise ValueError("concept_layers= chooses the blocks of concept maps: give concepts= too")
        self._in_concept_pass = False
        self._streams = self.backbone.streams()
        self._generations: list[Generation] = []
        self._pending: list[EncoderCall] = []
        self._layer_calls = LayerCalls()
        self._stack: contextlib.ExitStack | None = None
        self._entered = False

    # -- the context -------------------------------------------------------------------------------

    def __enter__(self) -> Trace:
        if self._entered:
            raise RuntimeError("a Trace is entered once; make a new one with daam_widget.trace(pipe)")
        with contextlib.ExitStack() as stack:
            needs_image_keys = self.backbone.shares_softmax(self.softmax_over)
            projections = None if needs_image_keys else self.backbone.projections
            recorded = dict(self._modules)
            concept_attention: dict[str, Any] = {}
            if self._concepts is not None:
                concept_attention = {f"{n}.attn": b.attn for n, b in self._concepts.blocks.items()}
                recorded |= concept_attention
                for name, block in self._concepts.blocks.items():
                    before_block = torch.compiler.disable(self._before_block(name))
                    after_block = torch.compiler.disable(self._after_block(name))
                    stack.callback(block.register_forward_pre_hook(before_block, with_kwargs=True).remove)
                    stack.callback(block.register_forward_hook(after_block).remove)
            recorders = stack.enter_context(
                recording(
                    recorded,
                    self._on_attention,
                    projections=projections,
                    wanted=self._wanted,
                    keep_values=concept_attention,
                )
            )
            if self.backbone.compiled and any(r.projections is None for r in recorders.values()):
                warnings.warn(WATCHED_WHEN_COMPILED.format(self.backbone.name), stacklevel=2)
            # hooks run as they are where a compiled model calls them (a model compiled in place runs its
            # own hooks inside the compiled code), so that the model is compiled once, not at every step
            before = torch.compiler.disable(self._before_denoiser)
            after = torch.compiler.disable(self._after_denoiser)
            for denoiser in self.backbone.denoisers():
                stack.callback(denoiser.register_forward_pre_hook(before, with_kwargs=True).remove)
                stack.callback(denoiser.register_forward_hook(after).remove)
            for name in dict.fromkeys(s.encoder for s in self._streams):
                encoder = getattr(self.pipe, name, None)
                if encoder is not None:
                    hook = torch.compiler.disable(encoder_hook(name, encoder, self._pending))
                    stack.callback(encoder.register_forward_hook(hook, with_kwargs=True).remove)
            vae = getattr(self.pipe, "vae", None)
            if vae is not None:
                decoded = torch.compiler.disable(self._after_decoder)
                stack.callback(vae.decoder.register_forward_hook(decoded).remove)
            self._stack = stack.pop_all()
        self._entered = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._compute_waiting()
        finally:
            if self._stack is not None:
                self._stack.close()
                self._stack = None

    # -- run tracking ------------------------------------------------------------------------------

    def _before_denoiser(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        self._compute_waiting()  # a call that raised leaves its layers' calls
        if self._concepts is not None:
            self._concepts.start_call()
        call = self.backbone.read_call(args, kwargs)
        guided = self._guided_now()
        current = self._generations[-1] if self._generations else None
        if current is not None and not self._pending and not call.counts:
            current.role = "extra"
            return
        if (
            current is not None
            and not self._pending
            and self.backbone.negative_in_separate_call
            and current.is_separate_negative(call)
        ):
            current.role = "negative"
            current.negative_embeddings = call.embeddings
            current.running_call = call
            return
        if (
            current is None
            or self._pending
            or (not current.same_text(call) and not current.continues_with(call, guided))
        ):
            current = self._start_generation(call, guided)
        if call.batch != current.batch_size(guided):
            raise RuntimeError(
                f"the denoiser batch has {call.batch} rows, but {current.num_images} images with guidance "
                f"{'on' if guided else 'off'} make {current.batch_size(guided)}"
            )
        current.role = "step"
        current.guided_now = guided
        current.last_call = current.running_call = call
        current.steps += 1

    def _after_denoiser(self, *_: object) -> None:
        self._compute_waiting()
        if self.on_step is not None and self._generations and self._generations[-1].role == "step":
            self.on_step(self)

    def _guided_now(self) -> bool:
        if self.guidance is not None:
            return self.guidance
        return bool(self.backbone.guided())

    def _start_generation(self, call: DenoiserCall, guided: bool) -> Generation:
        num_images = call.batch // 2 if guided else call.batch
        negative_rows = self.keep_negative and (guided or self.backbone.negative_in_separate_call)
        previous = self._generations[-1] if self._generations else None
        guidance_scale = getattr(self.pipe, "guidance_scale", None)
        generation = Generation(
            first_image=previous.first_image + previous.num_images if previous else 0,
            num_images=num_images,
            guided=guided,
            negative_rows=negative_rows,
            negative_first=self.backbone.negative_first,
            call=call,
            encodings=list(self._pending),
            streams=self.backbone.streams(),
            sums=AttentionSums(
                2 * num_images if negative_rows else num_images, self.time_resolved, call.text_length
            ),
            settings={
                "pipeline": type(self.pipe).__name__,
                "scheduler": type(self.pipe.scheduler).__name__,
                "guidance_scale": float(guidance_scale) if guided and guidance_scale is not None else 1.0,
                "num_inference_steps": getattr(self.pipe, "num_timesteps", None),
                "dtype": str(call.embeddings.dtype).removeprefix("torch."),
                "latent_size": list(call.grid),
                "softmax_over": self.softmax_over,
            },
        )
        if self._concepts is not None:
            generation.concept_sums = AttentionSums(
                generation.sums.rows, self.time_resolved, len(self._concepts.concepts)
            )
        if self.per_step:
            generation.record = StepRecord(
                generation.sums.rows, self._word_positions(generation), call.text_length
            )
        self._generations.append(generation)
        self._pending.clear()
        return generation

    def _word_positions(self, generation: Generation) -> list[int]:
        """The key positions of the kept rows' words: what the step record keeps. Every key where the
        words cannot be known yet (a negative prompt given in a call of its own)."""
        every = list(range(generation.embeddings.shape[1]))
        if generation.negative_rows and not generation.guided:
            return every
        positions: set[int] = set()
        with warnings.catch_warnings():  # what the layout warns of is said when maps are asked for
            warnings.simplefilter("ignore")
            for negative in (False, True) if generation.negative_rows else (False,):
                for local in range(generation.num_images):
                    layout = self._layout(generation, local, negative, None)
                    if not layout.spans:
                        return every
                    positions.update(t for s in layout.word_spans for t in s.tokens)
        return sorted(positions)

    # -- recording ---------------------------------------------------------------------------------

    @property
    def concepts(self) -> list[str] | None:
        """The concepts whose maps are recorded (``trace(concepts=...)``), checked; None without them."""
        return self._concepts.concepts if self._concepts is not None else None

    def _wanted(self) -> bool:
        """Whether the attention call about to run is recorded: a step asked for, with rows to keep."""
        if not self._generations or self._in_concept_pass:
            return False
        generation = self._generations[-1]
        if self.steps is not None and generation.steps - 1 not in self.steps:
            return False
        return bool(generation.rows_to_record())

    def _on_attention(
        self, layer: str, attn: Any, arguments: dict[str, Any], seen: AttentionInputs | None
    ) -> None:
        """Record one attention call that ``_wanted`` let through."""
        generation = self._generations[-1]
        step = generation.steps - 1
        call = generation.running_call or generation.call
        if self._concepts is not None and layer in self._concepts.attention and seen is not None:
            image, _ = self.backbone.positions(arguments, call)
            if not isinstance(image, slice):
                raise ValueError(
                    f"concept maps on {self.backbone.name}: its image tokens differ between rows"
                )
            self._concepts.saw(seen, image)
            seen = dataclasses.replace(seen, value=None, output=None)  # DAAM keeps q and k alone
        if layer not in self._modules:
            return
        for rows, first_kept_row in generation.rows_to_record():
            with torch.no_grad():
                probabilities = self.backbone.probabilities(
                    attn, arguments, seen, rows, call, self.heads, self.softmax_over
                )
            if probabilities is None:
                return
            if isinstance(probabilities, TextAttention):
                if self._layer_calls.add(LayerCall(layer, step, first_kept_row, probabilities)):
                    self._compute_waiting()
            else:
                self._add((layer,), step, probabilities[None], first_kept_row)

    def _before_block(self, name: str) -> Callable[[Any, tuple, dict], None]:
        """A joint block's pre-hook: keep its arguments for the concept tokens' call at its end."""

        def hook(block: Any, args: tuple, kwargs: dict) -> None:
            assert self._concepts is not None
            if not self._wanted():
                return
            if args:
                raise RuntimeError(
                    f"block {name} was called with positional arguments; concept maps need names"
                )
            if self._concepts.entry is None:
                self._encode_concepts()
            self._concepts.inputs = kwargs
            self._concepts.image = None

        return hook

    def _encode_concepts(self) -> None:
        """Encode the concepts inside the pipeline call (with its encoding options); what the text
        encoders' hooks see of it is no prompt."""
        assert self._concepts is not None
        pending = list(self._pending)

        def positions_of(concept: str, text: torch.Tensor) -> list[int]:
            layout = align_streams(
                self._stream_texts(text, 0, self.backbone.streams(), self._pending), concept
            )
            return sorted({t for span in layout.word_spans for t in span.tokens})

        self._in_concept_pass = True
        try:
            with torch.no_grad():
                self._concepts.encode(positions_of)
        finally:
            self._in_concept_pass = False
            self._pending[:] = pending

    def _after_block(self, name: str) -> Callable[[Any, tuple, Any], None]:
        """A joint block's hook: run the concept tokens through it and add its concept maps."""

        def hook(block: Any, args: tuple, output: Any) -> None:
            concepts = self._concepts
            assert concepts is not None
            if concepts.inputs is None or self._in_concept_pass:
                return
            generation = self._generations[-1]
            call = generation.running_call or generation.call
            assert generation.concept_sums is not None
            self._in_concept_pass = True
            try:
                for rows, first_kept_row in generation.rows_to_record():
                    maps = concepts.run_block(name, rows, first_kept_row, call.batch)
                    if maps is not None:
                        grid = self.backbone.layer_grid(call, maps.shape[1])
                        generation.concept_sums.add(
                            (name,), generation.steps - 1, maps[None], grid, first_kept_row
                        )
            finally:
                self._in_concept_pass = False
                concepts.inputs = concepts.image = None

        return hook

    def _compute_waiting(self) -> None:
        """Compute the layer calls that wait, each batch of them together."""
        if not self._layer_calls:
            return
        for batch in self._layer_calls.take():
            with torch.no_grad():
                probabilities = probabilities_together([c.attention for c in batch], self.backbone.constants)
            first = batch[0]
            self._add(tuple(c.layer for c in batch), first.step, probabilities, first.first_row)

    def _add(self, layers: tuple[str, ...], step: int, probabilities: torch.Tensor, first_row: int) -> None:
        """Add ``(layers, rows, queries, keys)`` probabilities of the running call to the sums."""
        generation = self._generations[-1]
        call = generation.running_call or generation.call
        grid = self.backbone.layer_grid(call, probabilities.shape[2])
        generation.sums.add(layers, step, probabilities, grid, first_row)
        if generation.record is not None:
            generation.record.add(step, probabilities, grid, first_row)

    def _after_decoder(self, module: torch.nn.Module, args: tuple, result: torch.Tensor | tuple) -> None:
        if not self._generations:
            return
        generation = self._generations[-1]
        # CogVideoX's decoder returns its frames and a cache
        output: torch.Tensor = result[0] if isinstance(result, tuple) else result
        if tuple(output.shape[-2:]) != generation.call.image_size:
            return  # a tile of a tiled decode: the image is not whole here
        if self.backbone.video:  # (images, channels, frames, H, W), some frames at a time
            generation.video_parts.append(
                _bytes(output.detach().float()).permute(0, 2, 3, 4, 1).cpu().numpy()
            )
            return
        pixels = self.backbone.finish(self.backbone.decoded_images(output.detach()).float(), generation.call)
        generation.images.extend(_bytes(pixels).permute(0, 2, 3, 1).cpu().numpy())

    # -- results -----------------------------------------------------------------------------------

    @property
    def num_images(self) -> int:
        """Images generated under this trace, all pipeline calls together."""
        last = self._generations[-1] if self._generations else None
        return last.first_image + last.num_images if last else 0

    @property
    def resolutions(self) -> list[tuple[int, ...]]:
        """Token (h, w) of every traced attention resolution of the last generation, largest first (a
        video's (frames, h, w))."""
        self._compute_waiting()
        if not self._generations:
            return []
        sizes = set(self._generations[-1].sums.grids.values())
        return sorted(sizes, key=lambda s: -math.prod(s))

    @property
    def num_steps(self) -> int:
        """Denoising steps of the last generation so far."""
        return self._generations[-1].steps if self._generations else 0

    def memory_bytes(self) -> int:
        """Bytes held by the attention sums (and step records) of all generations."""
        self._compute_waiting()
        return sum(g.sums.nbytes() + (g.record.nbytes() if g.record else 0) for g in self._generations)

    def heat_maps(
        self,
        i: int = 0,
        *,
        prompt: str | None = None,
        negative: bool = False,
        layers: Sequence[str] | None = None,
        resolutions: Iterable[int | tuple[int, int]] | None = None,
        steps: Steps | None = None,
        stream: str | None = None,
    ) -> HeatMaps:
        """The DAAM heat maps of image ``i`` (images of all calls under the trace, numbered in order).

        Parameters
        ----------
        prompt:
            The text of this image's prompt. Without it, words come from decoding the token ids (lower
            case where the tokenizer lower-cases, as CLIP's does) and cut-off words cannot be named. With
            it, words keep their case and punctuation, and the text is checked against the ids the encoder
            saw.
        negative:
            Maps for the negative prompt (the unconditional prediction); needs
            ``trace(..., keep_negative=True)``.
        layers, resolutions, steps:
            Sum only these layers (name prefixes), resolutions (token grid ``h`` or ``(h, w)``) or steps
            (``steps`` needs ``trace(..., time_resolved=True)``).
        stream:
            Only the keys of one tokenizer window: ``"clip"`` or ``"t5"`` on SD3. Default: every window that
            has words (a word's map sums its tokens in each).
        """
        generation, local = self._generation_of(i)
        if negative and not (generation.negative_rows and generation.has_negative):
            raise ValueError(
                "negative-prompt maps need guidance on (guidance_scale > 1, or true_cfg_scale > 1 with a "
                "negative prompt on Flux) and trace(pipe, keep_negative=True)"
            )
        row = local + (0 if negative else generation.negative_row_offset)
        names = self.layer_names
        if layers is not None:
            names = _matching(names, layers)
        chosen_steps = _steps_filter(steps)
        record = generation.record
        from_record = chosen_steps is not None and not self.time_resolved and record is not None
        if from_record and layers is not None:
            raise ValueError(
                "the per-step record sums the layers of each resolution: choose resolutions= with steps=, "
                "or trace(pipe, time_resolved=True) to choose layers and steps together"
            )
        layout = self._layout(generation, local, negative, prompt)
        if stream is not None:
            layout = layout.stream(stream)
        elif layout.spans:
            layout = PromptLayout(
                layout.text, layout.spans, tuple(s for s in layout.streams if s.end_position is not None)
            )
        if from_record:
            assert record is not None and chosen_steps is not None
            positions: Sequence[int] = [p for p in layout.used_positions if p in record.positions]
            picked = [t for t in chosen_steps if t < record.num_steps]
            selected = (
                [record.maps(row, g, positions)[picked].sum(0) for g in record.grids()] if picked else []
            )
        else:
            positions = layout.used_positions
            selected = [t[row, list(positions)] for t in generation.sums.select(names, chosen_steps)]
        if resolutions is not None:
            wanted = [(r, None) if isinstance(r, int) else tuple(r) for r in resolutions]
            selected = [
                t
                for t in selected
                if any(t.shape[-2] == h and (w is None or t.shape[-1] == w) for h, w in wanted)
            ]
            if not selected:
                raise ValueError(f"resolutions={list(resolutions)!r} matches none of {self.resolutions}")
        if not selected:
            raise ValueError(self._nothing_recorded(generation, steps))
        settings = {
            "layers": names if layers is not None else "all",
            "resolutions": sorted({tuple(t.shape[-2:]) for t in selected}, reverse=True),
            "heads": self.heads if self.heads is not None else "all",
            "steps": [s for s in (chosen_steps or self.steps or ())] or "all",
            "streams": [s.name for s in layout.streams],
        }
        return self._heat_maps_of(selected, generation, local, i, negative, positions, layout, settings)

    def concept_maps(
        self,
        i: int = 0,
        *,
        negative: bool = False,
        layers: Sequence[str] | None = None,
        steps: Steps | None = None,
    ) -> HeatMaps:
        """Image ``i``'s ConceptAttention maps (``trace(concepts=...)``), as ``HeatMaps`` indexed by
        concept: ``maps["cat"]``, masks, and the pair measures. ``layers``: a subset of the joint blocks
        recorded (name prefixes); ``steps`` as in ``heat_maps``."""
        if self._concepts is None:
            raise ValueError("concept maps need trace(pipe, concepts=[...])")
        generation, local = self._generation_of(i)
        if negative and not (generation.negative_rows and generation.has_negative):
            raise ValueError(
                "negative-prompt concept maps need trace(pipe, keep_negative=True) and guidance on"
            )
        assert generation.concept_sums is not None
        row = local + (0 if negative else generation.negative_row_offset)
        names = self._concepts.chosen if layers is None else _matching(self._concepts.chosen, layers)
        if not names:
            raise ValueError(f"layers={layers!r} matches none of the concept blocks {self._concepts.chosen}")
        chosen_steps = _steps_filter(steps)
        selected = [t[row] for t in generation.concept_sums.select(names, chosen_steps)]
        if not selected:
            raise ValueError(self._nothing_recorded(generation, steps))
        settings = {
            "map": "concept attention",
            "concepts": self._concepts.concepts,
            "layers": names,
            "steps": [s for s in (chosen_steps or self.steps or ())] or "all",
        }
        positions = range(len(self._concepts.concepts))
        return self._heat_maps_of(
            selected, generation, local, i, negative, positions, self._concepts.layout, settings
        )

    def _heat_maps_of(
        self,
        selected: list[torch.Tensor],
        generation: Generation,
        local: int,
        i: int,
        negative: bool,
        positions: Sequence[int],
        layout: PromptLayout,
        settings: dict[str, Any],
    ) -> HeatMaps:
        """``HeatMaps`` of the ``selected`` per-resolution sums: Eq. 6 over them, upsampled once to the image
        (and as the pipeline finishes its image), with the generation's settings and ``settings``."""
        settings = {
            **generation.settings,
            "num_steps": generation.steps,
            "image_index": i,
            "negative": negative,
            **settings,
        }
        size = generation.call.image_size
        if self.backbone.video:
            grids = GridSums.of(selected, size, size)
            factor = generation.call.temporal_factor
            return VideoHeatMaps(grids, positions, layout, factor, generation.video(local), settings)
        maps = upsample_once(selected, size)
        maps = self.backbone.finish(maps[None], generation.call)[0]
        grids = GridSums.of(selected, size, (maps.shape[-2], maps.shape[-1]))
        image = generation.images[local] if local < len(generation.images) else None
        return HeatMaps(maps.cpu(), positions, layout, image=image, settings=settings, grids=grids)

    def layer_focus(self, i: int = 0, *, prompt: str | None = None) -> torch.Tensor:
        """How concentrated each word's attention is in each layer: ``(layers, words)``, in ``layer_names``
        and word order. 1 minus the entropy of the word's map at the layer's own grid (every step summed)
        over that of an even map: 1 when it is all on one cell, 0 when it is spread evenly. A hint, needing
        no labels, of which layers localise a word (Seg4Diff finds single blocks that segment well); NaN
        where a word has no attention in a layer (a word the window cut off). ``prompt`` as in
        ``heat_maps``."""
        generation, local = self._generation_of(i)
        row = local + generation.negative_row_offset
        layout = self._layout(generation, local, False, prompt)
        tokens = [list(s.tokens) for s in layout.word_spans]
        focus = torch.full((len(self.layer_names), len(tokens)), float("nan"))
        recorded = [k for k, name in enumerate(self.layer_names) if name in generation.sums.grids]
        selected = generation.sums.select(self.layer_names, None)  # the layers in ``recorded``, at once
        for k, layer_maps in zip(recorded, selected, strict=True):
            maps = layer_maps[row].float()
            for w, positions in enumerate(tokens):
                word = maps[positions].sum(0).flatten() if positions else maps.new_zeros(1)
                total = word.sum()
                if total <= 0 or word.numel() < 2:
                    continue
                p = word / total
                entropy = -(p * p.clamp(min=1e-30).log()).sum()
                focus[k, w] = 1 - entropy / math.log(word.numel())
        return focus

    def step_maps(self, i: int = 0, *, prompt: str | None = None) -> StepMaps:
        """Image ``i``'s word maps at every step and resolution, from the per-step record (a video's per
        latent frame).

        Needs ``trace(pipe, per_step=True)``. ``prompt`` as in ``heat_maps``.
        """
        generation, local = self._generation_of(i)
        record = generation.record
        if record is None:
            raise ValueError("maps through time need trace(pipe, per_step=True)")
        layout = self._layout(generation, local, False, prompt)
        row = local + generation.negative_row_offset
        grids = record.grids()
        if not grids:
            raise ValueError(self._nothing_recorded(generation, None))
        column = {p: k for k, p in enumerate(record.positions)}
        pieces = [  # each word sums its tokens' columns; a word the window cut off has none (a zero map)
            [column[t] for t in s.tokens if t in column] if s.available else [] for s in layout.word_spans
        ]
        by_grid = {}
        for grid in grids:
            tokens = record.maps(row, grid, record.positions)
            by_grid[(grid[-2], grid[-1])] = (
                torch.stack([tokens[:, c].sum(1) for c in pieces], 1) if pieces else tokens[:, :0]
            )
        return StepMaps(layout, by_grid, generation.call.image_size)

    def _nothing_recorded(self, generation: Generation, steps: Steps | None) -> str:
        """Why a selection holds no map: the steps asked for (here or at ``trace``) were not run."""
        ran = f"the run had {generation.steps} steps (0..{generation.steps - 1})"
        if steps is not None:
            return f"steps={steps!r} holds none of the recorded steps: {ran}"
        if self.steps is not None:
            return f"trace(steps={self.steps!r}) recorded nothing: {ran}"
        return f"no attention maps were recorded for these layers; {ran}"

    def _generation_of(self, i: int) -> tuple[Generation, int]:
        self._compute_waiting()
        for generation in self._generations:
            if generation.first_image <= i < generation.first_image + generation.num_images:
                return generation, i - generation.first_image
        if not self._generations:
            raise IndexError(
                f"image {i} was not generated under this trace: no denoising step has run under it (call "
                "the pipeline inside `with daam_widget.trace(pipe) as tc:`, with num_inference_steps of 1 or "
                "more)"
            )
        raise IndexError(f"image {i} was not generated under this trace; images are 0..{self.num_images - 1}")

    def _layout(self, generation: Generation, local: int, negative: bool, prompt: str | None) -> PromptLayout:
        """Every stream's layout of image ``local``'s (negative) prompt, combined."""
        text = generation.embeddings
        if generation.guided:
            text = generation.halves(text)[0 if negative else 1]
        elif negative:
            assert generation.negative_embeddings is not None
            text = generation.negative_embeddings
        streams = [s.for_negative() for s in generation.streams] if negative else generation.streams
        return align_streams(self._stream_texts(text, local, streams, generation.encodings), prompt)

    def _stream_texts(
        self, text: torch.Tensor, local: int, streams: Sequence[TextStream], encodings: list[EncoderCall]
    ) -> list[StreamText]:
        """What is known of each stream's text of row ``local`` of the denoiser's ``text``."""
        return [
            StreamText(
                stream,
                _text_tokenizer(getattr(self.pipe, stream.tokenizer, None)),
                window_behind(text, local, stream, encodings),
                stream.num_keys(text.shape[1]),
            )
            for stream in streams
        ]


def _bytes(pixels: torch.Tensor) -> torch.Tensor:
    """Decoded pixels in [-1, 1] as uint8, as diffusers' image processors round them."""
    return ((pixels / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8)


def _text_tokenizer(tokenizer: Any) -> Any:
    """The tokenizer itself where a pipeline holds a processor around it (Flux.2's ``PixtralProcessor``)."""
    from transformers import ProcessorMixin

    return tokenizer.tokenizer if isinstance(tokenizer, ProcessorMixin) else tokenizer


trace = Trace
"""``daam_widget.trace(pipe, ...)`` makes a :class:`Trace`; the two are one signature."""
