"""Recording attention through diffusers' attention-processor seam.

Each traced attention module gets a recorder: a processor that runs the module's original processor
unchanged, so the generated image is bit-identical to an untraced run, and reports the call to a callback:
its arguments, and the query and key the processor computed. The tracer then needs no second computation
of q and k (projections, norms, rotary embeddings), only the softmax of q kᵀ over the text keys. Where a
family knows that a processor takes q and k as its projection submodules give them (``Projections``),
forward hooks on those keep their outputs: two Python calls. Otherwise a ``TorchFunctionMode``, active only
while the processor runs, sees the query, key, mask and scale it hands to
``torch.nn.functional.scaled_dot_product_attention``: it changes and patches nothing, but costs a Python
call for every torch operation of the processor. A processor that shows neither (xFormers, a
flash-attention package) reports ``None`` and the family recomputes q and k from the arguments, where it
can. What is done with q and k is ``_probabilities``'.
``recording`` installs recorders module by module (``module.set_processor``, which every diffusers
attention class has, unlike ``set_attn_processor`` on newer transformers) and puts the original processor
objects, and the hooks, back on every exit path.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from ._probabilities import AttentionInputs

_install_lock = threading.Lock()
_attention = torch.nn.functional.scaled_dot_product_attention


AttentionCallback = Callable[[str, Any, dict[str, Any], "AttentionInputs | None"], None]
"""``(layer_name, attn, arguments, inputs)`` after the layer ran; ``arguments`` are the processor's
arguments by name (``hidden_states``, ``encoder_hidden_states``, ``attention_mask``, ...), ``inputs``
what it gave the attention function, or None."""


class _AttentionWatch(TorchFunctionMode):
    """Keeps the inputs of the first ``scaled_dot_product_attention`` call made while it is active."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: AttentionInputs | None = None

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func is _attention and self.seen is None:
            named = dict(zip(("query", "key", "value", "attn_mask"), args, strict=False)) | kwargs
            self.seen = AttentionInputs(
                named["query"], named["key"], named.get("attn_mask"), named.get("scale")
            )
        return func(*args, **kwargs)


@dataclass(frozen=True)
class Projections:
    """The submodules whose outputs are a processor's image queries and text keys, for a processor known
    to use them as they are: ``(batch, n, heads * head_dim)`` outputs when ``*_split`` (a projection, or a
    norm acting on the whole projection), else already ``(batch, heads, n, head_dim)`` (a per-head norm)."""

    query: torch.nn.Module
    key: torch.nn.Module
    query_split: bool
    key_split: bool


class AttentionRecorder:
    """An attention processor that runs ``original``, then reports the call to ``callback``.

    With ``projections`` the query and key are taken from forward hooks on those submodules, which cost
    two Python calls; calls with a mask, and processors without them, are watched with
    ``_AttentionWatch``, which costs a Python call for every torch operation the processor makes.
    """

    _signature: inspect.Signature

    def __init__(
        self,
        original: Any,
        layer_name: str,
        callback: AttentionCallback,
        watch: bool = True,
        projections: Projections | None = None,
        wanted: Callable[[], bool] | None = None,
    ) -> None:
        self.original = original
        self.layer_name = layer_name
        self.callback = callback
        self.watch = watch
        self.projections = projections
        self.wanted = wanted
        self.outputs: list[torch.Tensor | None] = [None, None]

    def __call__(self, attn: Any, *args: Any, **kwargs: Any) -> Any:
        if self.wanted is not None and not self.wanted():
            return self.original(attn, *args, **kwargs)
        arguments = self._signature.bind_partial(attn, *args, **kwargs).arguments
        arguments.pop(next(iter(self._signature.parameters)))
        if not self.watch:
            self.callback(self.layer_name, attn, arguments, None)
            return self.original(attn, *args, **kwargs)
        if self.projections is not None and arguments.get("attention_mask") is None:
            self.outputs = [None, None]
            output = self.original(attn, *args, **kwargs)
            self.callback(self.layer_name, attn, arguments, self._projected(attn))
            return output
        with _AttentionWatch() as watch:
            output = self.original(attn, *args, **kwargs)
        self.callback(self.layer_name, attn, arguments, watch.seen)
        return output

    def keep(self, index: int) -> Callable[[Any, Any, torch.Tensor], None]:
        """A forward hook that keeps the output of projection ``index`` (0: query, 1: key)."""

        def hook(module: Any, args: Any, output: torch.Tensor) -> None:
            self.outputs[index] = output

        return hook

    def _projected(self, attn: Any) -> AttentionInputs | None:
        query, key = self.outputs
        self.outputs = [None, None]
        if query is None or key is None or self.projections is None:
            return None
        p = self.projections
        return AttentionInputs(
            _by_heads(query, attn.heads) if p.query_split else query,
            _by_heads(key, attn.heads) if p.key_split else key,
            None,
            None,
            (_ALL, _ALL),
        )


def _by_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """``(batch, n, heads * head_dim)`` as the view ``(batch, heads, n, head_dim)``, in one operation."""
    batch, length, width = x.shape
    sb, sn, sw = x.stride()
    head_dim = width // heads
    return x.as_strided((batch, heads, length, head_dim), (sb, head_dim * sw, sn, sw), x.storage_offset())


@functools.cache
def _recorder_type(processor_type: type) -> type[AttentionRecorder]:
    """A recorder class whose ``__call__`` declares what ``processor_type.__call__`` declares.

    diffusers passes a processor only the keyword arguments its signature names, so a recorder with a
    generic signature would silently drop, say, Flux's ``image_rotary_emb`` or an IP-Adapter's masks.
    """
    signature = inspect.signature(processor_type.__call__)
    unbound = signature.replace(parameters=list(signature.parameters.values())[1:])

    def __call__(self: AttentionRecorder, *args: Any, **kwargs: Any) -> Any:
        return AttentionRecorder.__call__(self, *args, **kwargs)

    __call__.__signature__ = signature  # type: ignore[attr-defined]
    return type(
        f"Recording{processor_type.__name__}",
        (AttentionRecorder,),
        {"__call__": __call__, "_signature": unbound},
    )


@contextmanager
def recording(
    modules: Mapping[str, Any],
    callback: AttentionCallback,
    watch: bool = True,
    projections: Callable[[Any], Projections | None] | None = None,
    wanted: Callable[[], bool] | None = None,
) -> Iterator[dict[str, AttentionRecorder]]:
    """Install recorders on the attention ``modules`` (by layer name) for the ``with`` block; ``watch``:
    report the attention function's inputs too; ``projections(module)``: where a module's query and key
    come from, if its processor is known to use them as they are; ``wanted()``: whether the call about to
    run is recorded at all (else the original runs alone, with nothing watched).

    Raises RuntimeError if one of them is already being recorded: two traces on one model would each see
    the other's recorder as "the original" and could restore the wrong processors.
    """
    with _install_lock:
        originals = {name: module.processor for name, module in modules.items()}
        if any(isinstance(p, AttentionRecorder) for p in originals.values()):
            raise RuntimeError(
                "this pipeline is already being traced; traces cannot nest or run concurrently on one "
                "pipeline: finish the other `with daam_widget.trace(pipe)` block first"
            )
        recorders = {}
        for name, module in modules.items():
            found = projections(module) if projections is not None and watch else None
            recorder = _recorder_type(type(originals[name]))  # type: ignore[arg-type]
            recorders[name] = recorder(originals[name], name, callback, watch, found, wanted)
        hooks: list[Any] = []
        try:
            for name, module in modules.items():
                found = recorders[name].projections
                if found is not None:
                    hooks.append(found.query.register_forward_hook(recorders[name].keep(0)))
                    hooks.append(found.key.register_forward_hook(recorders[name].keep(1)))
                module.set_processor(recorders[name])
        except BaseException:
            _restore(modules, originals, hooks)
            raise
    try:
        yield recorders
    finally:
        _restore(modules, originals, hooks)


def _restore(modules: Mapping[str, Any], originals: Mapping[str, Any], hooks: list[Any]) -> None:
    for hook in hooks:
        hook.remove()
    for name, module in modules.items():
        module.set_processor(originals[name])


_ALL = slice(None)
