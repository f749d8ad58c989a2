"""Print the trait table of docs/widget.md from the traits' own help (``--check``: say whether the
document's table is that one)."""

from __future__ import annotations

import pathlib
import sys

DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "widget.md"
BEGIN = "<!-- traits: python scripts/trait_table.py writes this table -->"
END = "<!-- /traits -->"


def table() -> str:
    """One row per public trait in the order the class declares them: default, synced, help and, for a
    choice, the values allowed."""
    import traitlets

    from daam_widget import DaamWidget

    fresh = DaamWidget()
    rows = ["| trait | default | synced | what it is |", "| --- | --- | --- | --- |"]
    for name, trait in vars(DaamWidget).items():
        if name.startswith("_") or not isinstance(trait, traitlets.TraitType):
            continue
        meaning = trait.help
        if isinstance(trait, traitlets.Enum):
            meaning += " One of " + ", ".join(f"`{v!r}`" for v in trait.values) + "."
        value = getattr(fresh, name)
        default = "empty" if isinstance(trait, traitlets.Bytes) else f"`{value!r}`"
        synced = "yes" if trait.metadata.get("sync") else "no"
        rows.append(f"| `{name}` | {default} | {synced} | {meaning.replace('|', '/')} |")
    return "\n".join(rows)


def documented() -> str:
    text = DOC.read_text(encoding="utf-8")
    return text[text.index(BEGIN) + len(BEGIN) : text.index(END)].strip()


if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:
        sys.exit(0 if documented() == table() else "docs/widget.md's trait table is not the traits' help")
    print(table())
