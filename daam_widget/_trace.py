"""``trace(pipe)``: record DAAM heat maps while a diffusers text-to-image pipeline generates.

Everything is learnt through public seams, never by patching pipeline methods:

- cross-attention probabilities: recorders installed with ``unet.set_attn_processor`` (``_capture``);
- steps, latent size, the batch and its guidance layout: a forward pre-hook on the UNet. Every UNet
  evaluation is one step; a UNet call with new text embeddings starts a new generation;
- which token ids produced which rows of the text embeddings: forward hooks on the text encoders. A
  recorded encoding is matched to the UNet's embeddings by value, so positive and negative prompts are told
  apart whatever the pipeline was given (prompts, ``prompt_embeds``, or a mix);
- the decoded image: a forward hook on the VAE decoder.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ._aggregate import AttentionSums, latent_grid, upsample_once
from ._capture import attention_probabilities, cross_attention_layers, recording
from ._heat_maps import HeatMaps
from ._words import PromptLayout, layout_from_ids, layout_from_text, layout_without_ids

SUPPORTED_PIPELINES = ("StableDiffusionPipeline", "StableDiffusionXLPipeline")


@dataclass
class _Encoding:
    """One text-encoder call: its ids ``(prompts, tokens)`` and outputs that may be the UNet's embeddings."""

    encoder: int
    ids: torch.Tensor
    candidates: list[torch.Tensor]


@dataclass
class _Generation:
    """One pipeline call: the UNet calls from one encoding of the prompts to the decoded images.

    ``guided`` is the guidance layout at the first step, which fixes the rows kept: the conditional half,
    and the unconditional one first if the negative prompt is kept. ``guided_now`` may turn off during the
    run (diffusers' CFG-cutoff callbacks drop the unconditional half after some step).
    """

    first_image: int
    num_images: int
    guided: bool
    latent_size: tuple[int, int]
    image_size: tuple[int, int]
    embeddings: torch.Tensor
    encodings: list[_Encoding]
    sums: AttentionSums
    settings: dict[str, Any]
    guided_now: bool = False
    last_embeddings: torch.Tensor | None = None
    last_timestep: Any = None
    steps: int = 0
    images: list[np.ndarray] = field(default_factory=list)

    def batch_size(self, guided: bool) -> int:
        return 2 * self.num_images if guided else self.num_images

    def continues_with(self, batch: int, guided: bool, timestep: Any) -> bool:
        """Whether a UNet call with new embeddings is a later step of this run rather than a new run."""
        return batch == self.batch_size(guided) and _scalar(timestep) < _scalar(self.last_timestep)

    def rows_to_record(self, keep_negative: bool) -> tuple[slice, int]:
        """The rows of this step's UNet batch to record, and the kept row they go to first."""
        n = self.num_images
        if not self.guided_now:
            return slice(0, n), n if self.guided and keep_negative else 0
        return (slice(0, 2 * n), 0) if keep_negative else (slice(n, 2 * n), 0)


def _scalar(timestep: Any) -> float:
    return float(torch.as_tensor(timestep).flatten()[0])


def _steps_filter(steps: range | slice | tuple[int, int] | None) -> range | None:
    if steps is None:
        return None
    if isinstance(steps, tuple):
        steps = range(*steps)
    if isinstance(steps, slice):
        steps = range(steps.start or 0, steps.stop if steps.stop is not None else 1 << 30, steps.step or 1)
    if not isinstance(steps, range) or steps.start < 0 or steps.stop < 0:
        raise ValueError(
            f"steps must be a range, slice or (start, stop) of non-negative steps, not {steps!r}"
        )
    return steps


class Trace:
    """The context a traced generation runs in; see :func:`trace`. Results stay readable after the block."""

    def __init__(
        self,
        pipe: Any,
        *,
        layers: Sequence[str] | None = None,
        heads: Sequence[int] | None = None,
        steps: range | slice | tuple[int, int] | None = None,
        time_resolved: bool = False,
        keep_negative: bool = False,
        guidance: bool | None = None,
    ) -> None:
        names = [c.__name__ for c in type(pipe).__mro__]
        if not any(n in SUPPORTED_PIPELINES for n in names):
            raise TypeError(
                f"{type(pipe).__name__} is not supported; daam_widget.trace supports "
                f"{' and '.join(SUPPORTED_PIPELINES)} (and their subclasses)"
            )
        self.pipe = pipe
        modules = cross_attention_layers(pipe.unet)
        available = list(modules)
        if layers is None:
            self.layer_names = available
        else:
            if isinstance(layers, str):
                layers = [layers]
            self.layer_names = [n for n in available if any(n.startswith(p) for p in layers)]
            if not self.layer_names:
                raise ValueError(
                    f"layers={list(layers)!r} matches no cross-attention layer; layer names are: "
                    + ", ".join(available)
                )
        if heads is not None:
            heads = [int(h) for h in heads]
            fewest = min(modules[n].heads for n in self.layer_names)
            if not heads or min(heads) < 0 or max(heads) >= fewest:
                raise ValueError(
                    f"heads must be indices in 0..{fewest - 1} (the fewest heads of a layer), not {heads}"
                )
        self.heads = heads
        self.steps = _steps_filter(steps)
        self.time_resolved = time_resolved
        self.keep_negative = keep_negative
        self.guidance = guidance
        self._generations: list[_Generation] = []
        self._pending: list[_Encoding] = []
        self._stack: contextlib.ExitStack | None = None
        self._entered = False

    # -- the context -------------------------------------------------------------------------------

    def __enter__(self) -> Trace:
        if self._entered:
            raise RuntimeError("a Trace is entered once; make a new one with daam_widget.trace(pipe)")
        with contextlib.ExitStack() as stack:
            stack.enter_context(recording(self.pipe.unet, self._on_attention, self.layer_names))
            stack.callback(
                self.pipe.unet.register_forward_pre_hook(self._before_unet, with_kwargs=True).remove
            )
            for index, encoder in enumerate(self._text_encoders()):
                hook = encoder.register_forward_hook(self._after_encoder(index), with_kwargs=True)
                stack.callback(hook.remove)
            vae = getattr(self.pipe, "vae", None)
            if vae is not None:
                stack.callback(vae.decoder.register_forward_hook(self._after_decoder).remove)
            self._stack = stack.pop_all()
        self._entered = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    def _text_encoders(self) -> list[torch.nn.Module]:
        names = ("text_encoder", "text_encoder_2")
        return [e for e in (getattr(self.pipe, n, None) for n in names) if e is not None]

    # -- hooks -------------------------------------------------------------------------------------

    def _after_encoder(self, index: int):
        final_norm = getattr(
            getattr(self._text_encoders()[index], "text_model", None), "final_layer_norm", None
        )

        def hook(module: torch.nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
            ids = args[0] if args else kwargs.get("input_ids")
            if ids is None:
                return
            outputs = [output[0], *(getattr(output, "hidden_states", None) or ())]
            candidates = [t for t in outputs if isinstance(t, torch.Tensor) and t.ndim == 3]
            if final_norm is not None and getattr(output, "hidden_states", None):
                with torch.no_grad():
                    candidates += [final_norm(h) for h in output.hidden_states[:-1]]
            self._pending.append(_Encoding(index, ids.detach().cpu(), [c.detach() for c in candidates]))

        return hook

    def _before_unet(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        sample = args[0] if args else kwargs["sample"]
        timestep = args[1] if len(args) > 1 else kwargs["timestep"]
        embeddings = args[2] if len(args) > 2 else kwargs["encoder_hidden_states"]
        guided = self._guided_now()
        current = self._generations[-1] if self._generations else None
        if (
            current is None
            or self._pending
            or (
                embeddings is not current.last_embeddings
                and not current.continues_with(sample.shape[0], guided, timestep)
            )
        ):
            current = self._start_generation(sample, embeddings, guided)
        if sample.shape[0] != current.batch_size(guided):
            raise RuntimeError(
                f"the UNet batch has {sample.shape[0]} rows, but {current.num_images} images with guidance "
                f"{'on' if guided else 'off'} make {current.batch_size(guided)}"
            )
        current.guided_now = guided
        current.last_embeddings, current.last_timestep = embeddings, timestep
        current.steps += 1

    def _guided_now(self) -> bool:
        if self.guidance is not None:
            return self.guidance
        try:
            return bool(self.pipe.do_classifier_free_guidance)
        except AttributeError:
            return False

    def _start_generation(self, sample: torch.Tensor, embeddings: torch.Tensor, guided: bool) -> _Generation:
        num_images = sample.shape[0] // 2 if guided else sample.shape[0]
        latent = (int(sample.shape[-2]), int(sample.shape[-1]))
        scale = int(getattr(self.pipe, "vae_scale_factor", 1))
        previous = self._generations[-1] if self._generations else None
        generation = _Generation(
            first_image=previous.first_image + previous.num_images if previous else 0,
            num_images=num_images,
            guided=guided,
            latent_size=latent,
            image_size=(latent[0] * scale, latent[1] * scale),
            embeddings=embeddings,
            encodings=self._pending,
            sums=AttentionSums(
                2 * num_images if guided and self.keep_negative else num_images, self.time_resolved
            ),
            settings={
                "pipeline": type(self.pipe).__name__,
                "scheduler": type(self.pipe.scheduler).__name__,
                "guidance_scale": float(getattr(self.pipe, "_guidance_scale", 1.0)) if guided else 1.0,
                "num_inference_steps": getattr(self.pipe, "_num_timesteps", None),
                "dtype": str(embeddings.dtype).removeprefix("torch."),
                "latent_size": list(latent),
            },
        )
        self._generations.append(generation)
        self._pending = []
        return generation

    def _on_attention(
        self,
        layer: str,
        attn: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None,
    ) -> None:
        generation = self._generations[-1]
        step = generation.steps - 1
        if self.steps is not None and step not in self.steps:
            return
        rows, first_kept_row = generation.rows_to_record(self.keep_negative)
        if attention_mask is not None and attention_mask.shape[0] == hidden_states.shape[0]:
            attention_mask = attention_mask[rows]
        with torch.no_grad():
            probabilities = attention_probabilities(
                attn, hidden_states[rows], encoder_hidden_states[rows], attention_mask, self.heads
            )
        batch, queries, tokens = probabilities.shape
        h, w = latent_grid(queries, generation.latent_size)
        maps = probabilities.transpose(1, 2).reshape(batch, tokens, h, w)
        generation.sums.add(layer, step, maps, first_kept_row)

    def _after_decoder(self, module: torch.nn.Module, args: tuple, output: torch.Tensor) -> None:
        if not self._generations:
            return
        generation = self._generations[-1]
        if tuple(output.shape[-2:]) != generation.image_size:
            return  # a tile of a tiled decode: the image is not whole here
        pixels = ((output.detach().float() / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8)
        generation.images.extend(pixels.permute(0, 2, 3, 1).cpu().numpy())

    # -- results -----------------------------------------------------------------------------------

    @property
    def num_images(self) -> int:
        """Images generated under this trace, all pipeline calls together."""
        last = self._generations[-1] if self._generations else None
        return last.first_image + last.num_images if last else 0

    @property
    def resolutions(self) -> list[tuple[int, int]]:
        """Latent (h, w) of every traced cross-attention resolution of the last generation, largest first."""
        if not self._generations:
            return []
        sizes = {(int(t.shape[-2]), int(t.shape[-1])) for t in self._generations[-1].sums.totals.values()}
        return sorted(sizes, key=lambda s: -s[0] * s[1])

    @property
    def num_steps(self) -> int:
        """UNet evaluations of the last generation so far."""
        return self._generations[-1].steps if self._generations else 0

    def memory_bytes(self) -> int:
        """Bytes held by the attention sums of all generations."""
        return sum(g.sums.nbytes() for g in self._generations)

    def heat_maps(
        self,
        i: int = 0,
        *,
        prompt: str | None = None,
        negative: bool = False,
        layers: Sequence[str] | None = None,
        resolutions: Iterable[int | tuple[int, int]] | None = None,
        steps: range | slice | tuple[int, int] | None = None,
    ) -> HeatMaps:
        """The DAAM heat maps of image ``i`` (images of all calls under the trace, numbered in order).

        Parameters
        ----------
        prompt:
            The text of this image's prompt. Without it, words come from decoding the token ids (lower
            case, as the tokenizer saw them) and cut-off words cannot be named. With it, words keep their
            case and punctuation, and the text is checked against the ids the encoder saw.
        negative:
            Maps for the negative prompt (the unconditional half); needs ``trace(..., keep_negative=True)``.
        layers, resolutions, steps:
            Sum only these layers (name prefixes), resolutions (latent ``h`` or ``(h, w)``) or steps
            (``steps`` needs ``trace(..., time_resolved=True)``).
        """
        generation, local = self._generation_of(i)
        if negative and not (generation.guided and self.keep_negative):
            raise ValueError(
                "negative-prompt maps need guidance on (guidance_scale > 1) and "
                "trace(pipe, keep_negative=True)"
            )
        row = local + (
            generation.num_images if generation.guided and self.keep_negative and not negative else 0
        )
        names = self.layer_names
        if layers is not None:
            prefixes = [layers] if isinstance(layers, str) else list(layers)
            names = [n for n in names if any(n.startswith(p) for p in prefixes)]
        selected = generation.sums.select(names, _steps_filter(steps))
        if resolutions is not None:
            wanted = [(r, None) if isinstance(r, int) else tuple(r) for r in resolutions]
            selected = [
                t
                for t in selected
                if any(t.shape[-2] == h and (w is None or t.shape[-1] == w) for h, w in wanted)
            ]
            if not selected:
                raise ValueError(f"resolutions={list(resolutions)!r} matches none of {self.resolutions}")
        layout = self._layout(generation, local, negative, prompt)
        positions = layout.used_positions
        maps = upsample_once([t[row, list(positions)] for t in selected], generation.image_size)
        image = generation.images[local] if local < len(generation.images) else None
        settings = {
            **generation.settings,
            "num_steps": generation.steps,
            "image_index": i,
            "negative": negative,
            "layers": names if layers is not None else "all",
            "resolutions": sorted({tuple(t.shape[-2:]) for t in selected}, reverse=True),
            "heads": self.heads if self.heads is not None else "all",
            "steps": [s for s in (_steps_filter(steps) or self.steps or ())] or "all",
        }
        return HeatMaps(maps.cpu(), positions, layout, image=image, settings=settings)

    def _generation_of(self, i: int) -> tuple[_Generation, int]:
        for generation in self._generations:
            if generation.first_image <= i < generation.first_image + generation.num_images:
                return generation, i - generation.first_image
        raise IndexError(f"image {i} was not generated under this trace; images are 0..{self.num_images - 1}")

    def _layout(
        self, generation: _Generation, local: int, negative: bool, prompt: str | None
    ) -> PromptLayout:
        ids = self._ids_of(generation, local, negative)
        tokenizer = getattr(self.pipe, "tokenizer", None)
        if prompt is not None:
            return layout_from_text(prompt, tokenizer, ids)
        if ids is None:
            return layout_without_ids(generation.embeddings.shape[1])
        return layout_from_ids(ids, tokenizer)

    def _ids_of(self, generation: _Generation, local: int, negative: bool) -> list[int] | None:
        """The ids behind image ``local``'s positive (or negative) embeddings, if an encoder made them."""
        half = generation.embeddings
        if generation.guided:
            n = generation.num_images
            half = half[:n] if negative else half[n:]
        for encoding in generation.encodings:
            if encoding.encoder != 0 or half.shape[0] % encoding.ids.shape[0]:
                continue
            repeat = half.shape[0] // encoding.ids.shape[0]
            for candidate in encoding.candidates:
                if candidate.shape[1] != half.shape[1] or candidate.shape[-1] > half.shape[-1]:
                    continue
                expected = candidate.repeat_interleave(repeat, dim=0).to(half.dtype).float()
                seen = half[..., : candidate.shape[-1]].float()
                if torch.allclose(expected, seen, rtol=1e-3, atol=1e-3 * float(seen.abs().max())):
                    return encoding.ids[local // repeat].tolist()
        return None


def trace(
    pipe: Any,
    *,
    layers: Sequence[str] | None = None,
    heads: Sequence[int] | None = None,
    steps: range | slice | tuple[int, int] | None = None,
    time_resolved: bool = False,
    keep_negative: bool = False,
    guidance: bool | None = None,
) -> Trace:
    """Record DAAM heat maps of what ``pipe`` generates inside the ``with`` block.

    >>> with trace(pipe) as tc:
    ...     out = pipe("a dog on a hat")
    >>> maps = tc.heat_maps()          # first image; tc.heat_maps(i) for image i
    >>> maps["dog"], maps.mask("dog", tau=0.4)

    Parameters
    ----------
    pipe:
        A ``StableDiffusionPipeline`` or ``StableDiffusionXLPipeline`` (or a subclass). For SDXL, maps are
        indexed by the first tokenizer (``pipe.tokenizer``); both tokenizers split text the same way and
        differ only in padding, so token positions agree for the same prompt. If ``prompt_2`` differs from
        ``prompt``, each key position mixes the two prompts' tokens at that position.
    layers:
        Record only cross-attention layers whose names start with one of these (``"up_blocks"``,
        ``"mid_block"``, a full name from ``Trace.layer_names``). Default: all, the mid block included.
    heads:
        Sum only these head indices in every layer. Default: all heads.
    steps:
        Record only these denoising steps (UNet evaluations, from 0), e.g. ``range(10, 20)``.
    time_resolved:
        Also keep each step's maps so ``heat_maps(steps=...)`` can choose steps afterwards. Memory then grows
        with the number of steps (see ``AttentionSums``); by default it does not.
    keep_negative:
        Also record the unconditional half of a classifier-free-guidance batch (the negative prompt).
    guidance:
        Whether the UNet batch is ``[unconditional, conditional]``. Default: read from the pipeline during
        its call (``guidance_scale > 1``). Pass ``False`` when you call ``pipe.unet`` yourself on conditional
        rows only.

    The UNet's attention processors are restored, as the same objects, on every exit from the block.
    """
    return Trace(
        pipe,
        layers=layers,
        heads=heads,
        steps=steps,
        time_resolved=time_resolved,
        keep_negative=keep_negative,
        guidance=guidance,
    )
