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
import weakref
from collections.abc import Callable, Collection, Iterator, Mapping
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
    """Keeps the inputs of the first ``scaled_dot_product_attention`` call made while it is active (and
    its values and result, with ``keep_values``)."""

    def __init__(self, keep_values: bool = False) -> None:
        super().__init__()
        self.seen: AttentionInputs | None = None
        self.keep_values = keep_values

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func is not _attention or self.seen is not None:
            return func(*args, **kwargs)
        named = dict(zip(("query", "key", "value", "attn_mask"), args, strict=False)) | kwargs
        output = func(*args, **kwargs)
        values = (named["value"], output) if self.keep_values else (None, None)
        self.seen = AttentionInputs(
            named["query"],
            named["key"],
            named.get("attn_mask"),
            named.get("scale"),
            value=values[0],
            output=values[1],
        )
        return output


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
        module: Any,
        original: Any,
        layer_name: str,
        callback: AttentionCallback,
        watch: bool = True,
        projections: Projections | None = None,
        wanted: Callable[[], bool] | None = None,
    ) -> None:
        self._module = weakref.ref(module)  # kept in ``_recorders`` beyond the trace: never keep the model
        self.original = original
        self.layer_name = layer_name
        self.callback = callback
        self.watch = watch
        self.projections = projections
        self.wanted = wanted
        self.outputs: list[torch.Tensor | None] = [None, None]
        self.keep_values = False
        """Report the attention call's values and result too (watched, never through projections)."""
        parameter = next(module.parameters(), None)
        self.token = torch.zeros((), device=parameter.device if parameter is not None else None)
        """What ``_report`` declares it changes, so that a compiler keeps the call (it never changes)."""

    @property
    def module(self) -> Any:
        """The attention module this recorder is for."""
        return self._module()

    def __call__(self, attn: Any, *args: Any, **kwargs: Any) -> Any:
        if torch.compiler.is_compiling():
            return self._compiled(attn, *args, **kwargs)
        if self.wanted is not None and not self.wanted():
            return self.original(attn, *args, **kwargs)
        arguments = self._signature.bind_partial(attn, *args, **kwargs).arguments
        arguments.pop(next(iter(self._signature.parameters)))
        if not self.watch:
            self.callback(self.layer_name, attn, arguments, None)
            return self.original(attn, *args, **kwargs)
        if self.projections is not None and arguments.get("attention_mask") is None and not self.keep_values:
            output, query, key = self._run_projected(attn, args, kwargs)
            projected = self._split(query, key) if query is not None and key is not None else None
            self.callback(self.layer_name, attn, arguments, projected)
            return output
        output, seen = self._run_watched(attn, args, kwargs)
        self.callback(self.layer_name, attn, arguments, seen)
        return output

    def _run_projected(self, attn: Any, args: tuple, kwargs: dict) -> tuple[Any, Any, Any]:
        """The original processor's output, and the query and key its projections' hooks kept (or None)."""
        self.outputs = [None, None]
        output = self.original(attn, *args, **kwargs)
        query, key = self.outputs
        self.outputs = [None, None]
        return output, query, key

    def _run_watched(self, attn: Any, args: tuple, kwargs: dict) -> tuple[Any, AttentionInputs | None]:
        """The original processor's output, and what it gave its attention call (None: no such call)."""
        watch = _AttentionWatch(self.keep_values)  # not ``with ... as``: torch.compile does not bind the name
        with watch:
            output = self.original(attn, *args, **kwargs)
        return output, watch.seen

    def _compiled(self, attn: Any, *args: Any, **kwargs: Any) -> Any:
        """The call as ``torch.compile`` traces it: what the family needs goes to ``_report``, an operation
        opaque to the compiler that runs ``report`` when the compiled code runs. Nothing that changes
        between steps is read here, so the compiled denoiser is compiled once."""
        arguments = self._signature.bind_partial(attn, *args, **kwargs).arguments
        mask_argument = arguments.get("attention_mask")
        hidden, context = arguments.get("hidden_states"), arguments.get("encoder_hidden_states")
        if self.projections is not None and mask_argument is None:
            output, query, key = self._run_projected(attn, args, kwargs)
            if query is not None and key is not None:
                _report(self.token, id(self), query, key, None, None, hidden, context, None, True)
            return output
        output, seen = self._run_watched(attn, args, kwargs)
        if seen is not None:
            _report(
                self.token,
                id(self),
                seen.query,
                seen.key,
                seen.mask,
                seen.scale,
                hidden,
                context,
                mask_argument,
                False,
            )
        return output

    def report(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        mask: torch.Tensor | None,
        scale: float | None,
        arguments: dict[str, Any],
        projected: bool,
    ) -> None:
        """Run the callback for a compiled call (``_report``). Compiled code reuses the memory of q and k
        once the layer is done with them, so the tracer, which computes a denoiser call's layers together
        when it ends, gets copies."""
        if self.wanted is not None and not self.wanted():
            return
        query, key = query.clone(), key.clone()
        mask = mask.clone() if mask is not None else None
        inputs = self._split(query, key) if projected else AttentionInputs(query, key, mask, scale)
        self.callback(self.layer_name, self.module, arguments, inputs)

    def keep(self, index: int) -> Callable[[Any, Any, torch.Tensor], None]:
        """A forward hook that keeps the output of projection ``index`` (0: query, 1: key)."""

        def hook(module: Any, args: Any, output: torch.Tensor) -> None:
            self.outputs[index] = output

        return hook

    def _split(self, query: torch.Tensor, key: torch.Tensor) -> AttentionInputs:
        """The projections' outputs as inputs: image queries and text keys, heads split later."""
        assert self.projections is not None
        p, heads = self.projections, self.module.heads
        split = (heads if p.query_split else 0, heads if p.key_split else 0)
        return AttentionInputs(query, key, None, None, (_ALL, _ALL), split_heads=split)


def _ignore(*_: Any) -> None:
    """The callback of a recorder between traces."""


_live: dict[int, AttentionRecorder] = {}
"""The installed recorders by ``id``: how a compiled graph's ``_report`` finds its recorder."""


@torch.library.custom_op("daam_widget::report_attention", mutates_args=("token",))
def _report(
    token: torch.Tensor,
    recorder: int,
    query: torch.Tensor,
    key: torch.Tensor,
    mask: torch.Tensor | None,
    scale: float | None,
    hidden_states: torch.Tensor | None,
    encoder_hidden_states: torch.Tensor | None,
    attention_mask: torch.Tensor | None,
    projected: bool,
) -> None:
    """A compiled attention call's q and k (and what the family reads of the call's arguments) to the
    recorder ``recorder``, if it is still installed."""
    found = _live.get(recorder)
    if found is None:
        return
    named = {
        "hidden_states": hidden_states,
        "encoder_hidden_states": encoder_hidden_states,
        "attention_mask": attention_mask,
    }
    arguments = {name: value for name, value in named.items() if value is not None}
    found.report(query, key, mask, scale, arguments, projected)


@_report.register_fake
def _(*args: Any) -> None:
    return None


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


_recorders: weakref.WeakKeyDictionary[Any, AttentionRecorder] = weakref.WeakKeyDictionary()
"""The last recorder made for each attention module."""


def _recorder_for(
    module: Any,
    original: Any,
    name: str,
    callback: AttentionCallback,
    watch: bool,
    projections: Projections | None,
    wanted: Callable[[], bool] | None,
) -> AttentionRecorder:
    """A recorder for ``module``: the one it had in an earlier trace, where that one wraps the same
    processor with the same projections, so that a compiled denoiser, whose code checks which processor
    object each module has, is not compiled again for every trace (the widget traces every generation)."""
    recorder = _recorders.get(module)
    if recorder is None or recorder.original is not original or recorder.projections != projections:
        kind = _recorder_type(type(original))  # type: ignore[arg-type]
        recorder = kind(module, original, name, callback, watch, projections, wanted)
        _recorders[module] = recorder
    recorder.layer_name, recorder.callback, recorder.watch, recorder.wanted = name, callback, watch, wanted
    return recorder


@contextmanager
def recording(
    modules: Mapping[str, Any],
    callback: AttentionCallback,
    watch: bool = True,
    projections: Callable[[Any], Projections | None] | None = None,
    wanted: Callable[[], bool] | None = None,
    keep_values: Collection[str] = (),
) -> Iterator[dict[str, AttentionRecorder]]:
    """Install recorders on the attention ``modules`` (by layer name) for the ``with`` block; ``watch``:
    report the attention function's inputs too; ``projections(module)``: where a module's query and key
    come from, if its processor is known to use them as they are; ``wanted()``: whether the call about to
    run is recorded at all (else the original runs alone, with nothing watched); ``keep_values``: the
    modules whose attention calls are reported with their values and result.

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
            keep = name in keep_values
            found = projections(module) if projections is not None and watch and not keep else None
            recorders[name] = _recorder_for(module, originals[name], name, callback, watch, found, wanted)
            recorders[name].keep_values = keep
        hooks: list[Any] = []
        try:
            for name, module in modules.items():
                found = recorders[name].projections
                if found is not None:
                    hooks.append(found.query.register_forward_hook(recorders[name].keep(0)))
                    hooks.append(found.key.register_forward_hook(recorders[name].keep(1)))
                module.set_processor(recorders[name])
                _live[id(recorders[name])] = recorders[name]
        except BaseException:
            _restore(modules, originals, hooks, recorders)
            raise
    try:
        yield recorders
    finally:
        _restore(modules, originals, hooks, recorders)


def _restore(
    modules: Mapping[str, Any],
    originals: Mapping[str, Any],
    hooks: list[Any],
    recorders: Mapping[str, AttentionRecorder],
) -> None:
    for recorder in recorders.values():
        _live.pop(id(recorder), None)
        recorder.callback, recorder.wanted = _ignore, None  # kept for a later trace: let this one go
    for hook in hooks:
        hook.remove()
    for name, module in modules.items():
        module.set_processor(originals[name])


_ALL = slice(None)
