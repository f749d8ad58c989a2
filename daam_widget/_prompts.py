"""The prompts of a dataset run, read with their numbers: a text file, JSONL, a COCO captions file, CSV or
Parquet.

- Text: every non-blank line is one prompt.
- JSONL (a name ending in ``.jsonl`` or ``.ndjson``, or a first non-blank line starting with ``{``): each
  line is ``{"prompt": ..., "seed": ..., "negative_prompt": ..., <any pipeline keyword>: ...}``.
- COCO captions (``.json``: ``{"annotations": [{"image_id", "id", "caption"}, ...]}``, as
  ``captions_val2017.json``): each annotation is a prompt; its ``image_id`` and ``id`` go to the index row's
  ``source``, so that masks can be scored against the image's segmentations.
- CSV (``.csv``, ``.tsv``) and Parquet (``.parquet``, read with pyarrow when it is installed): a table with a
  header; the prompt is the ``column`` named (default ``prompt``), and the row's other columns go to
  ``source``.

Prompt ``k`` is line (or annotation, or row) ``k + 1``: blank lines count, so adding a line at the end
changes no other prompt's number or seed.
"""

from __future__ import annotations

import csv
import difflib
import inspect
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

RESERVED = (
    "generator",
    "num_images_per_prompt",
    "num_videos_per_prompt",
    "output_type",
    "return_dict",
    "latents",
)
"""Pipeline keywords the run sets itself: a prompt line may not name them."""


def _json_argument(name: str) -> bool:
    """Whether a pipeline argument can come from a JSON line (not a tensor, image or callback)."""
    return not (name.endswith("_embeds") or name.startswith(("callback", "ip_adapter")) or name in RESERVED)


@dataclass(frozen=True)
class PromptLine:
    """One prompt to generate: ``index`` k (0-based line), ``line`` (1-based, for messages), its text, its
    seed (``None``: the run's ``seed + k``), negative prompt, and any other pipeline keywords."""

    index: int
    line: int
    prompt: str
    seed: int | None = None
    negative_prompt: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)
    """Where the prompt comes from beyond its number (a COCO annotation's ids, a table row's other columns);
    written to the index, not part of what the image depends on."""


@dataclass(frozen=True)
class BadLine:
    """A line that was skipped, and why (what was wrong and what is allowed)."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


class PromptFileError(ValueError):
    """A bad line under ``strict=True``."""


def pipeline_arguments(pipe: Any) -> list[str]:
    """The keyword arguments ``pipe.__call__`` names (diffusers pipelines take and drop ``**kwargs``)."""
    parameters = inspect.signature(type(pipe).__call__).parameters
    return [n for n, p in parameters.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)][1:]


def check_pipeline_arguments(
    pipe: Any, kwargs: Iterable[str], others: Sequence[str] = (), owner: str | None = None
) -> None:
    """Refuse keywords ``pipe.__call__`` does not name: diffusers' pipelines take ``**kwargs`` and would
    drop a misspelt one (``num_inference_step=5``) without a word. The hint is the closest name among the
    pipeline's and ``others`` (the keywords of ``owner``, the caller that also takes keywords)."""
    named = pipeline_arguments(pipe)
    for key in kwargs:
        if key not in named:
            close = difflib.get_close_matches(key, [*named, *others])
            hint = f"; did you mean {close[0]!r}?" if close else "."
            where = type(pipe).__name__ + (f" or of {owner}" if owner else "")
            raise TypeError(
                f"{key!r} is not an argument of {where}{hint} "
                f"The pipeline takes: {', '.join(n for n in named if n != 'prompt')}"
            )


TABLES = (".csv", ".tsv", ".parquet")


def read_prompts(
    source: str | os.PathLike | Iterable[str | Mapping[str, Any]],
    allowed: Sequence[str] | None = None,
    column: str = "prompt",
) -> tuple[list[PromptLine], list[BadLine]]:
    """The good prompts of a file (or of a list of strings and dicts, item ``k`` on "line" ``k + 1``) and
    the bad lines. ``allowed``: the pipeline keywords a JSONL line may add (default: any); ``column``: a
    table's prompt column."""
    sources: list[dict[str, Any]] = []
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"no prompt file at {path}")
        if path.suffix in TABLES:
            lines, sources = _table(path, column)
        elif path.suffix == ".json":
            lines, sources = _coco(path)
        else:
            lines = path.read_text(encoding="utf-8-sig").splitlines()  # a BOM is not text
            jsonl = path.suffix in (".jsonl", ".ndjson") or next(
                (s.lstrip().startswith("{") for s in lines if s.strip()), False
            )
            if jsonl:
                lines = [_json(s) if s.strip() else s for s in lines]
    else:
        lines = list(source)
    good, bad = [], []
    for k, item in enumerate(lines):
        if isinstance(item, str) and not item.strip():
            continue
        try:
            line = _prompt_line(k, item, allowed)
        except ValueError as error:
            bad.append(BadLine(k + 1, str(error)))
            continue
        good.append(replace(line, source=sources[k]) if sources else line)
    return good, bad


def _coco(path: Path) -> tuple[list[Any], list[dict[str, Any]]]:
    """A COCO captions file's captions, in its order, with each annotation's ids."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        annotations = data["annotations"]
        if not isinstance(annotations, list):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise ValueError(
            f"{path} is not a COCO captions file ({{'annotations': [{{'image_id', 'id', 'caption'}}]}}); a "
            "prompt file is text, JSONL, a COCO captions .json, .csv, .tsv or .parquet"
        ) from None
    lines: list[Any] = []
    sources = []
    for a in annotations:
        caption = a.get("caption") if isinstance(a, dict) else None
        lines.append(
            caption if isinstance(caption, str) else _Unusable(f"an annotation without a caption: {a!r}")
        )
        sources.append({k: a[k] for k in ("image_id", "id") if isinstance(a, dict) and k in a})
    return lines, sources


def _table(path: Path, column: str) -> tuple[list[Any], list[dict[str, Any]]]:
    """A table's prompt column and each row's other columns."""
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise ValueError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow)") from None
        rows = pq.read_table(path).to_pylist()
    else:
        with open(path, encoding="utf-8-sig", newline="") as f:
            rows = list(csv.DictReader(f, delimiter="\t" if path.suffix == ".tsv" else ","))
    if rows and column not in rows[0]:
        raise ValueError(f"{path} has no column {column!r}; its columns: {', '.join(map(str, rows[0]))}")
    lines = [
        r[column] if isinstance(r[column], str) else _Unusable(f"no text in {column!r}: {r!r}") for r in rows
    ]
    return lines, [{k: v for k, v in r.items() if k != column} for r in rows]


class _Unusable(str):
    """An item that cannot be a prompt (a JSONL line that did not parse, a row without text), carrying
    why."""


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        return _Unusable(f"not JSON ({error.msg} at column {error.colno}): {text[:60]!r}")


def _prompt_line(k: int, item: Any, allowed: Sequence[str] | None) -> PromptLine:
    if isinstance(item, _Unusable):
        raise ValueError(str(item))
    if isinstance(item, str):
        return PromptLine(k, k + 1, item.strip())
    if not isinstance(item, Mapping):
        raise ValueError(f'a JSONL line is an object {{"prompt": ...}}, not {type(item).__name__}')
    entry = dict(item)
    prompt = entry.pop("prompt", None)
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError(f'no prompt: a JSONL line needs "prompt" (a non-empty string); keys: {list(item)}')
    seed = entry.pop("seed", None)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64):
        raise ValueError(f'"seed" must be an integer from 0 to 2**64 - 1, not {seed!r}')
    negative = entry.pop("negative_prompt", None)
    if negative is not None and not isinstance(negative, str):
        raise ValueError(f'"negative_prompt" must be a string, not {negative!r}')
    for key in entry:
        if key in RESERVED:
            raise ValueError(f"{key!r} is set by the run (per image from the seed); a line may not set it")
        if allowed is not None and (key not in allowed or not _json_argument(key)):
            usable = [a for a in allowed if _json_argument(a) and a not in ("prompt", "negative_prompt")]
            close = difflib.get_close_matches(key, [*usable, "seed", "negative_prompt"])
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            what = "unknown keyword" if key not in allowed else "keyword that JSON cannot give"
            raise ValueError(f"{what} {key!r}{hint}; allowed: seed, negative_prompt, {', '.join(usable)}")
    return PromptLine(k, k + 1, prompt.strip(), seed, negative, entry)
