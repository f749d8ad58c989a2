"""What the kernel and the browser agree on: every synced trait is in the TypeScript model type, and the
trait table of docs/widget.md is the traits' own help."""

import pathlib
import re
import runpy

import pytest

from daam_widget import DaamWidget
from daam_widget._gallery import GalleryGrid

ROOT = pathlib.Path(__file__).resolve().parent.parent
WITHOUT_KERNEL = {"has_kernel"}  # set by the page save_html writes, not by the kernel


def typescript_fields(path: str, type_name: str) -> set[str]:
    """The top-level field names of ``type_name = {...}`` or ``interface type_name {...}`` in ``path``."""
    text = (ROOT / path).read_text(encoding="utf-8")
    start = re.search(rf"(type {type_name} =|interface {type_name}) {{", text)
    assert start, f"{type_name} is not declared in {path}"
    depth, at, fields = 1, start.end(), set()
    for match in re.finditer(r"[{}]|^\s*(\w+)\??:", text[at:], flags=re.MULTILINE):
        if match.group(0) == "{":
            depth += 1
        elif match.group(0) == "}":
            depth -= 1
            if depth == 0:
                return fields
        elif depth == 1:
            fields.add(match.group(1))
    raise AssertionError(f"{type_name} in {path} does not close")


@pytest.mark.parametrize(
    ("widget", "path", "type_name"),
    [(DaamWidget, "js/context.ts", "DaamState"), (GalleryGrid, "js/gallery.ts", "GalleryState")],
)
def test_the_typescript_model_type_names_every_synced_trait(widget, path, type_name):
    synced = {name for name in widget.class_own_traits(sync=True) if not name.startswith("_")}
    fields = typescript_fields(path, type_name)
    assert synced - fields == set(), f"synced traits {type_name} does not name"
    assert fields - synced - WITHOUT_KERNEL == set(), f"{type_name} names traits the kernel does not have"


def test_the_trait_table_in_the_docs_is_the_traits_help():
    script = runpy.run_path(str(ROOT / "scripts" / "trait_table.py"))
    assert script["documented"]() == script["table"](), "python scripts/trait_table.py writes it"
