"""``daam-widget run|analyze|gallery ...`` (also ``python -m daam_widget ...``): the commands of dataset runs.

- ``run PROMPTS --out DIR``: DAAM over a prompt file (``torchrun ... -m daam_widget run ...`` splits it);
- ``analyze DIR``: the paper's tables and figures;
- ``gallery DIR``: a static page of the run's images.

``daam-widget COMMAND --help`` lists each one's options; docs/runs.md says what they write.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


def _run(argv: list[str]) -> int:
    from ._run_command import main

    return main(argv)


def _analyze(argv: list[str]) -> int:
    from ._analyze_command import main

    return main(argv)


def _gallery(argv: list[str]) -> int:
    from ._gallery_page import main

    return main(argv)


COMMANDS: dict[str, Callable[[list[str]], int]] = {"run": _run, "analyze": _analyze, "gallery": _gallery}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        given = f" (not {argv[0]!r})" if argv and argv[0] not in ("-h", "--help") else ""
        print(
            f"usage: daam-widget {{{','.join(COMMANDS)}}} ...{given}\n\n{(__doc__ or '').replace('``', '')}",
            file=sys.stderr,
        )
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    return COMMANDS[argv[0]](argv[1:])
