"""Layer calls that wait to be computed together, so that tracing costs a few operations per denoiser
call rather than a dozen per layer call.

A traced attention layer keeps its q and k (references, no operation) until the denoiser call ends;
then the calls whose q and k have the same shapes are computed as one batch
(``_probabilities.probabilities_together``). Keeping q and k alive holds memory, so a denoiser call's
calls are computed early once they hold ``BATCH_BYTES``, and a group is split so that its float32 scores
stay under it too: on the CPU sizes of the tests nothing splits; at 1024 px on a GPU a call is computed
in a few batches.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._probabilities import TextAttention

BATCH_BYTES = 512 * 2**20
"""What the kept q and k of waiting calls, and the scores of one batch, may hold."""


@dataclass(frozen=True)
class LayerCall:
    """One traced attention call: its layer, step, the kept row its first row goes to, and its work."""

    layer: str
    step: int
    first_row: int
    attention: TextAttention


class LayerCalls:
    """The calls waiting since the last ``take``."""

    def __init__(self, budget: int = BATCH_BYTES) -> None:
        self.budget = budget
        self._calls: list[LayerCall] = []
        self._held = 0

    def __bool__(self) -> bool:
        return bool(self._calls)

    def add(self, call: LayerCall) -> bool:
        """Keep ``call``; True when the kept calls hold the budget and should be computed now."""
        self._calls.append(call)
        self._held += call.attention.held_bytes()
        return self._held >= self.budget

    def take(self) -> list[list[LayerCall]]:
        """The kept calls in batches to compute together (in the order their first call came), and forget
        them."""
        groups: dict[tuple, list[LayerCall]] = {}
        for call in self._calls:
            groups.setdefault((call.step, call.first_row, *call.attention.together_key()), []).append(call)
        self._calls, self._held = [], 0
        batches = []
        for group in groups.values():
            size = max(1, self.budget // max(1, group[0].attention.result_bytes()))
            batches += [group[i : i + size] for i in range(0, len(group), size)]
        return batches
