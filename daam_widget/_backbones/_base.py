"""The protocol a denoiser family implements for the tracer, and what it reads from each denoiser call.

A family (UNet Stable Diffusion, SD3, Flux, PixArt, Sana) says: which attention modules carry text keys;
how to recompute, for one attention call, the image-query x text-key probabilities exactly as its
processor does; where text and image tokens sit; the token grid and the image size; which batch rows or
calls are conditional; and which tokenizer windows (streams) index the keys. Everything else (runs,
steps, sums, words, results) is the tracer's and the same for every family.
"""

from __future__ import annotations

import functools
import inspect
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch

from .._capture import Projections
from .._cross_attention import attention_probabilities, cross_attention_layers
from .._probabilities import AttentionInputs, Constants, TextAttention, probabilities_by_row
from .._text_streams import TextStream

SoftmaxOver = Literal["text", "all"]
Layout = tuple[slice, slice] | list[tuple[slice, slice]]
"""Where image queries and text keys sit along an attention call's sequence: one pair for every batch row,
or one per row."""


@dataclass
class DenoiserCall:
    """What one denoiser evaluation says, read from its arguments by the family.

    ``embeddings`` ``(batch, keys, features)`` are the text the keys come from. ``grid`` is the image
    tokens' (h, w) (for a UNet, its latent), or a video's (frames, h, w), tokens in that order.
    ``counts`` is False for an extra evaluation that is not a denoising step of its own (SD3's skip-layer
    guidance).
    """

    batch: int
    timestep: Any
    embeddings: torch.Tensor
    grid: tuple[int, ...]
    image_size: tuple[int, int]
    counts: bool = True
    output_size: tuple[int, int] | None = None
    text_lengths: tuple[int, ...] | None = None
    """Each row's number of text keys where rows differ inside ``embeddings`` (zeros after them)."""
    rising: bool = False
    """The timestep grows through a run (Z-Image's runs from 0 to 1)."""
    temporal_factor: int = 1
    """A video's decoded frames per latent frame after the first (its causal VAE's temporal factor)."""
    mask: torch.Tensor | None = None
    """The denoiser's own mask argument, where its blocks make each layer's attention mask from it anew
    (Chroma): what those masks are made from, one object for the call."""

    @functools.cached_property
    def time(self) -> float:
        """The timestep as a number that decreases through a run (read once: it costs a device sync)."""
        t = self.timestep
        if isinstance(t, torch.Tensor):
            t = (t if t.numel() == 1 else t.reshape(-1)[0]).item()
        return -float(t) if self.rising else float(t)

    @property
    def text_length(self) -> int:
        return int(self.embeddings.shape[1])


class Backbone:
    """A denoiser family. Subclasses set the class attributes and implement the methods below."""

    name: ClassVar[str]
    """The family, as error messages and the README name it."""
    pipelines: ClassVar[tuple[str, ...]]
    """Pipeline class names this family supports (their subclasses too)."""
    denoiser_attribute: ClassVar[str] = "transformer"
    joint: ClassVar[bool] = False
    """Image and text keys share one softmax, so ``softmax_over="all"`` differs from ``"text"``."""
    negative_in_separate_call: ClassVar[bool] = False
    """The unconditional prediction is a second denoiser call in the same step (Flux's true CFG)."""
    negative_first: ClassVar[bool] = True
    """A guidance batch is ``[negative, positive]`` (Z-Image's is ``[positive, negative]``)."""
    video: ClassVar[bool] = False
    """The pipeline makes videos: the grid is (frames, h, w) and the maps are ``VideoHeatMaps``."""

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe
        self.denoiser: Any = getattr(pipe, self.denoiser_attribute)
        self.model: Any = getattr(self.denoiser, "_orig_mod", self.denoiser)
        """The denoiser's modules: the denoiser itself, or what ``torch.compile`` wrapped (layer names stay
        those of the model)."""
        self.constants = Constants()
        self._once: dict[str, list[tuple[list[torch.Tensor], Any]]] = {}

    layer_pattern: ClassVar[str]
    """A regular expression that the names of the attention modules with text keys match in whole."""
    processors: ClassVar[tuple[str, ...]]
    """The processor classes this family has been checked with; others are refused."""

    def denoisers(self) -> list[Any]:
        """The denoisers a step may call (Wan 2.2 calls ``transformer_2`` for its low-noise steps)."""
        return [self.denoiser]

    @property
    def compiled(self) -> bool:
        """Whether the denoiser is compiled (``torch.compile(model)`` or ``model.compile()``)."""
        return (
            self.model is not self.denoiser or getattr(self.denoiser, "_compiled_call_impl", None) is not None
        )

    def attention_layers(self) -> dict[str, Any]:
        """The attention modules with text keys, by module name, in model order."""
        layers = {
            name: module
            for name, module in self.model.named_modules()
            if re.fullmatch(self.layer_pattern, name) and hasattr(module, "processor")
        }
        self.check_processors(layers, self.processors)
        return layers

    def read_call(self, args: tuple, kwargs: dict[str, Any]) -> DenoiserCall:
        """What a denoiser call's arguments say (a forward pre-hook's ``args`` and ``kwargs``)."""
        raise NotImplementedError

    def probabilities(
        self,
        attn: Any,
        arguments: dict[str, Any],
        seen: AttentionInputs | None,
        rows: slice,
        call: DenoiserCall,
        heads: Sequence[int] | None,
        softmax_over: SoftmaxOver,
    ) -> torch.Tensor | TextAttention | None:
        """Image-query x text-key probabilities of ``rows``, summed over ``heads``: ``(rows, queries,
        text keys)`` float32; ``None`` if this call has no text keys.

        From the processor's own q and k when ``seen`` has them (as many key heads as query heads): then
        as the ``TextAttention`` to compute, which the trace computes with the denoiser call's other layer
        calls. Else recomputed from ``arguments``.
        """
        if not self.has_text(arguments):
            return None
        heads = list(heads) if heads is not None else None
        share = self.shares_softmax(softmax_over)
        if seen is None or 0 in seen.heads() or seen.heads()[0] != seen.heads()[1]:
            return self.recompute(attn, arguments, rows, call, heads, share)
        if seen.mask is not None:  # processors make their mask anew in every layer, from one argument
            seen.mask_source = call.mask if call.mask is not None else arguments.get("attention_mask")
        layout = seen.layout or self.positions(arguments, call)
        if isinstance(layout, list):
            return probabilities_by_row(seen, rows, layout, call.text_length, heads, share, self.constants)
        image, text = layout
        return TextAttention(seen, rows, image, text, heads, share)

    def shares_softmax(self, softmax_over: SoftmaxOver) -> bool:
        """Whether the maps are the text block of a softmax over image and text keys: the one place that
        decides what ``softmax_over="all"`` means on this family."""
        return self.joint and softmax_over == "all"

    def has_text(self, arguments: dict[str, Any]) -> bool:
        """Whether an attention call has text keys (cross-attention: it was given the text)."""
        return arguments.get("encoder_hidden_states") is not None

    def positions(self, arguments: dict[str, Any], call: DenoiserCall) -> Layout:
        """Where the image queries and the text keys sit in the processor's sequence (cross-attention:
        all queries are image, all keys text); a list with one pair per batch row where rows differ."""
        return slice(None), slice(None)

    def projections(self, attn: Any) -> Projections | None:
        """The submodules whose outputs are ``attn``'s image queries and text keys as its processor uses
        them, if the family knows; else the processor's attention call is watched. Not used with
        ``softmax_over="all"`` on joint attention, which needs the image keys too."""
        return None

    def recompute(
        self,
        attn: Any,
        arguments: dict[str, Any],
        rows: slice,
        call: DenoiserCall,
        heads: list[int] | None,
        share: bool,
    ) -> torch.Tensor:
        """``probabilities`` for a processor whose attention call was not seen: q and k computed again
        from the arguments, exactly as the processor does; ``share``: the text block of the softmax over
        all keys (``shares_softmax``). Families traced only at the attention call
        cannot do this: they say which backend shows it."""
        raise RuntimeError(
            f"{self.name} is traced where its attention processors call torch's "
            "scaled_dot_product_attention, and this attention call did not reach it (an attention backend "
            "such as flash or xFormers computes it elsewhere); trace it with the native backend: "
            f"pipe.{self.denoiser_attribute}.set_attention_backend('native')"
        )

    def streams(self) -> list[TextStream]:
        """The tokenizer windows of the keys, in key order, for the generation that is starting (a family
        may read the pipeline call's options)."""
        raise NotImplementedError

    def latent_call(
        self, latents: torch.Tensor, timestep: Any, embeddings: torch.Tensor, patch: int = 1, **fields: Any
    ) -> DenoiserCall:
        """The call on latents ``(batch, channels, h, w)`` cut into ``patch`` x ``patch`` tokens, the
        image ``vae_scale_factor`` times the latent; ``fields``: the rest of ``DenoiserCall``."""
        h, w = int(latents.shape[-2]), int(latents.shape[-1])
        scale = int(getattr(self.pipe, "vae_scale_factor", 1))
        return DenoiserCall(
            batch=int(latents.shape[0]),
            timestep=timestep,
            embeddings=embeddings,
            grid=(h // patch, w // patch),
            image_size=(h * scale, w * scale),
            **fields,
        )

    def once_per(self, name: str, parts: Sequence[torch.Tensor], make: Any) -> Any:
        """``make(parts)``, made again only when other tensors come: what a family derives from a
        denoiser call's inputs (the text joined from parts, the lengths in a mask) is then the same
        object through a run's steps (which keeps the run's text one tensor) and costs nothing after its
        first step. The last two values are kept per ``name`` (a step's positive and negative calls)."""
        kept = self._once.setdefault(name, [])
        for tensors, value in kept:
            if len(tensors) == len(parts) and all(a is b for a, b in zip(tensors, parts, strict=False)):
                return value
        value = make(parts)
        kept[:] = [*kept[-1:], (list(parts), value)]
        return value

    def layer_grid(self, call: DenoiserCall, queries: int) -> tuple[int, ...]:
        """The (h, w) or (frames, h, w) of a layer with ``queries`` image queries (transformers: the call's
        grid)."""
        if math.prod(call.grid) != queries:
            grid = "x".join(map(str, call.grid))
            raise ValueError(f"an attention layer has {queries} image queries, not the {grid} token grid")
        return call.grid

    def guided(self) -> bool | None:
        """Whether the batch is ``[unconditional, conditional]`` now; None if the pipeline does not say
        (as a property, or a local variable of its running call). Never where the negative prompt runs in
        a call of its own."""
        if self.negative_in_separate_call:
            return False
        try:
            return bool(self.pipe.do_classifier_free_guidance)
        except AttributeError:
            guided = pipeline_call_locals(self.pipe).get("do_classifier_free_guidance")
            return None if guided is None else bool(guided)

    def decoded_images(self, decoded: torch.Tensor) -> torch.Tensor:
        """The VAE decoder's output as images ``(n, c, H, W)``: a video VAE's ``(n, c, 1, H, W)`` (Qwen-Image,
        Krea-2, NucleusMoE) has its single frame taken out."""
        return decoded[:, :, 0] if decoded.ndim == 5 else decoded

    def finish(self, images: torch.Tensor, call: DenoiserCall) -> torch.Tensor:
        """What the pipeline does to decoded images ``(n, c, H, W)`` after the VAE; maps get the same."""
        return images

    # -- attributing a given image (attribute_image) ---------------------------------------------

    def pixel_multiple(self) -> tuple[int, str]:
        """What image sides must be a multiple of, and why (for the error message)."""
        scale = int(self.pipe.vae_scale_factor)
        patch = int(getattr(self.denoiser.config, "patch_size", None) or 1)
        if patch == 1:
            return scale, f"the VAE's factor {scale}"
        return scale * patch, f"{scale * patch} (the VAE's factor {scale} times the patch size {patch})"

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        """Latents of ``pixels`` ``(1, 3, H, W)`` in [-1, 1]: the mean of the VAE's posterior, shifted
        and scaled as the pipeline scales them before decoding."""
        config = self.pipe.vae.config
        latents = self.pipe.vae.encode(pixels).latent_dist.mean
        return (latents - (getattr(config, "shift_factor", None) or 0)) * config.scaling_factor

    def encode_text(self, prompt: str) -> dict[str, Any]:
        """The denoiser's text inputs for ``prompt``, without guidance, as ``denoise`` takes them."""
        raise NotImplementedError(f"attribute_image does not support {self.name} yet")

    def denoise(self, latents: torch.Tensor, timestep: int, text: dict[str, Any]) -> None:
        """One conditional denoiser call on ``latents`` at ``timestep`` (0..999); the output is unused."""
        raise NotImplementedError

    # -- concept maps (ConceptAttention, trace(concepts=...)) ---------------------------------------

    concept_blocks_pattern: ClassVar[str | None] = None
    """What the names of the joint (double-stream) blocks match in whole, where the family has them and its
    blocks take ``hidden_states`` and ``encoder_hidden_states`` by name and return ``(text, image)``; None:
    concept maps are refused."""

    concept_placeholders: ClassVar[int] = 0
    """Image tokens a joint block needs even on concept tokens (its code fails on none), given to it and
    left out of its attention call; the family's sequence must then be ``[text, image]``."""

    def concept_blocks(self) -> dict[str, Any]:
        """The joint blocks concept tokens run through, by name, in model order."""
        pattern = self.concept_blocks_pattern
        blocks = (
            {}
            if pattern is None
            else {n: m for n, m in self.model.named_modules() if re.fullmatch(pattern, n)}
        )
        if not blocks:
            raise ValueError(
                "concept maps (ConceptAttention) run concepts through joint double-stream blocks; "
                f"{self.name} has none that daam_widget knows. They work on Flux.1, Flux.2, Stable "
                "Diffusion 3/3.5, Qwen-Image, Chroma, LongCat-Image and Ovis-Image"
            )
        return blocks

    concept_encoding_options: ClassVar[tuple[str, ...]] = (
        "max_sequence_length",
        "text_encoder_out_layers",
        "clip_skip",
    )
    """The running pipeline call's options that ``concept_text`` encodes concepts with, as the prompt was."""

    def concept_text(self, concept: str) -> torch.Tensor:
        """The denoiser's text input for ``concept`` encoded alone, ``(1, keys, features)``, by the
        pipeline's ``encode_prompt`` with the running call's encoding options (its window length, its
        encoder layers), without guidance."""
        encode = self.pipe.encode_prompt
        accepted = inspect.signature(encode).parameters
        running = pipeline_call_locals(self.pipe)
        options = {k: running[k] for k in self.concept_encoding_options if running.get(k) is not None}
        options |= {
            "prompt": concept,
            "prompt_2": None,
            "prompt_3": None,
            "device": self.denoiser.device,
            "num_images_per_prompt": 1,
            "do_classifier_free_guidance": False,
        }
        result = encode(**{k: v for k, v in options.items() if k in accepted})
        parts = result if isinstance(result, tuple) else (result,)
        return next(t for t in parts if isinstance(t, torch.Tensor) and t.ndim == 3)

    def concept_entry(self, embeddings: torch.Tensor) -> torch.Tensor:
        """What the denoiser makes of its text input before the first block (its text embedder)."""
        embedder = self.model.context_embedder
        return embedder(embeddings.to(next(embedder.parameters()).dtype))

    def concept_call(self, kwargs: dict[str, Any], concepts: int) -> dict[str, Any]:
        """A joint block's keyword arguments for a call on ``concepts`` concept tokens (the block's own,
        cut to the rows): key masks dropped (concepts have no padding), and a rotary embedding ``(cos,
        sin)`` over ``[text, image]`` cut to its first ``concepts`` text positions."""
        for mask in ("attention_mask", "encoder_hidden_states_mask"):
            if mask in kwargs:
                kwargs[mask] = None
        rotary = kwargs.get("image_rotary_emb")
        if rotary is not None:
            kwargs["image_rotary_emb"] = tuple(r[:concepts] for r in rotary)
        return kwargs

    def concept_states(self, result: Any) -> torch.Tensor | None:
        """The concept tokens a joint block returned (None after a last block that updates no text)."""
        return result[0]

    def check_processors(self, layers: dict[str, Any], known: tuple[str, ...]) -> None:
        """Refuse processors whose attention this family does not know how to recompute exactly."""
        unknown = sorted({type(m.processor).__name__ for m in layers.values()} - set(known))
        if unknown:
            raise TypeError(
                f"{self.name}: attention processors {', '.join(unknown)} are not supported "
                f"(daam_widget recomputes attention exactly for {', '.join(known)}); "
                "reset them with the pipeline's default processors before tracing"
            )


class CrossAttentionBackbone(Backbone):
    """A family whose text keys come from real cross-attention (``attn2`` with ``is_cross_attention``):
    UNets, PixArt, Sana. ``norm_before_heads``: its q/k norms act on the whole projection (Sana)."""

    norm_before_heads: ClassVar[bool] = False

    def attention_layers(self) -> dict[str, Any]:
        return cross_attention_layers(self.model)

    def projections(self, attn: Any) -> Projections | None:
        """``AttnProcessor2_0`` and ``SanaAttnProcessor2_0`` take q and k as ``to_q`` and ``to_k`` (then
        ``norm_q`` and ``norm_k``, per head or, in Sana, on the whole projection) give them."""
        if type(attn.processor).__name__ not in ("AttnProcessor2_0", "SanaAttnProcessor2_0"):
            return None
        if attn.spatial_norm is not None or attn.group_norm is not None or attn.norm_cross:
            return None
        norm_q, norm_k = getattr(attn, "norm_q", None), getattr(attn, "norm_k", None)
        return Projections(
            norm_q if norm_q is not None else attn.to_q,
            norm_k if norm_k is not None else attn.to_k,
            norm_q is None or self.norm_before_heads,
            norm_k is None or self.norm_before_heads,
        )

    def recompute(
        self,
        attn: Any,
        arguments: dict[str, Any],
        rows: slice,
        call: DenoiserCall,
        heads: list[int] | None,
        share: bool,
    ) -> torch.Tensor:
        hidden, context = arguments["hidden_states"], arguments["encoder_hidden_states"]
        mask = rows_of(arguments.get("attention_mask"), rows, hidden.shape[0])
        return attention_probabilities(
            attn, hidden[rows], context[rows], mask, heads, norm_before_heads=self.norm_before_heads
        )


class JointBackbone(Backbone):
    """A family whose attention modules each run one attention call over image and text tokens side by
    side, every call with text keys, traced at that call: the sequence is ``[text, image]``
    (``text_first``) or ``[image, text]`` (the queries may be the image's alone), with ``registers``
    learned tokens before the text. By default the denoiser takes ``hidden_states`` ``(batch, channels,
    h, w)`` latents cut into ``patch_size`` patches, ``encoder_hidden_states`` and ``timestep``."""

    joint = True
    text_first: ClassVar[bool] = True
    registers: ClassVar[int] = 0
    image_queries: ClassVar[bool] = False
    """The queries are the image tokens alone (the keys still hold the text and the image)."""

    def read_call(self, args: tuple, kwargs: dict[str, Any]) -> DenoiserCall:
        patch = self.denoiser.config.patch_size
        return self.latent_call(
            argument(args, kwargs, 0, "hidden_states"),
            argument(args, kwargs, 2, "timestep"),
            argument(args, kwargs, 1, "encoder_hidden_states"),
            patch=int(patch[-1] if isinstance(patch, (tuple, list)) else patch),
        )

    def has_text(self, arguments: dict[str, Any]) -> bool:
        return True

    def positions(self, arguments: dict[str, Any], call: DenoiserCall) -> Layout:
        image, text = math.prod(call.grid), call.text_length
        if self.text_first:
            start = self.registers + text
            queries = slice(0, image) if self.image_queries else slice(start, start + image)
            return queries, slice(self.registers, start)
        return slice(0, image), slice(image + self.registers, image + self.registers + text)


def one_frame_per_token(family: str, temporal_patch: int) -> None:
    """Refuse a video denoiser whose tokens each span several latent frames: the causal VAE's frame rule
    (``latent_frame_of``) maps a decoded frame to a latent frame, not to such a token frame."""
    if temporal_patch != 1:
        raise NotImplementedError(
            f"{family} with a temporal patch of {temporal_patch} puts several latent frames in one token "
            "frame, which the causal VAE's frame rule does not map yet; a temporal patch of 1 is traced"
        )


def argument(args: tuple, kwargs: dict[str, Any], index: int, name: str) -> Any:
    """A forward argument given by position or by name."""
    return args[index] if len(args) > index else kwargs.get(name)


def rows_of(tensor: torch.Tensor | None, rows: slice, batch: int) -> torch.Tensor | None:
    """``tensor[rows]`` when its first dimension is the batch, else the tensor as it is (broadcast)."""
    if tensor is None or tensor.ndim == 0 or tensor.shape[0] != batch:
        return tensor
    return tensor[rows]


def pipeline_call_locals(pipe: Any) -> dict[str, Any]:
    """The local variables of the running ``pipe.__call__``, read from the call stack; empty outside one.

    Some pipelines keep what the tracer needs only there: the size asked for before resolution binning,
    whether guidance is on in this step, the instruction put before the prompt.
    """
    frame = inspect.currentframe()
    while frame is not None:
        if frame.f_code.co_name == "__call__" and frame.f_locals.get("self") is pipe:
            return dict(frame.f_locals)
        frame = frame.f_back
    return {}


def side_by_side(parts: Sequence[torch.Tensor]) -> torch.Tensor:
    """Texts ``(batch, n_i, d_i)`` one after the other along the positions, zero-padded to the widest:
    one tensor whose positions are the keys of several encoders, each matched by value in its first
    ``d_i`` features."""
    width = max(p.shape[-1] for p in parts)
    return torch.cat([torch.nn.functional.pad(p, (0, width - p.shape[-1])) for p in parts], dim=1)


def size_before_binning(pipe: Any) -> tuple[int, int] | None:
    """The (height, width) asked for, where the running call generates at the nearest size of a fixed set
    and resizes and crops its image back (PixArt, Sana, PRX: ``use_resolution_binning``); else None."""
    call_locals = pipeline_call_locals(pipe)
    if call_locals.get("use_resolution_binning") and "orig_height" in call_locals:
        return int(call_locals["orig_height"]), int(call_locals["orig_width"])
    return None


def resized_back(pipe: Any, images: torch.Tensor, call: DenoiserCall) -> torch.Tensor:
    """Images ``(n, c, H, W)`` resized and cropped back to the size asked for, as such a pipeline does."""
    if call.output_size is None:
        return images
    height, width = call.output_size
    return pipe.image_processor.resize_and_crop_tensor(images, width, height)
