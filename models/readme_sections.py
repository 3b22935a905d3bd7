"""Sections of models/README.md owned by one model script each, kept between markers so a script rewrites
only its own part."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent / "README.md"


def write_section(name: str, text: str) -> None:
    """Replace (or append) the section of models/`name`.py; the rest of the file is left alone."""
    begin, end = f"<!-- {name}: begin (written by models/{name}.py) -->", f"<!-- {name}: end -->"
    old = README.read_text() if README.exists() else ""
    block = f"{begin}\n{text.rstrip()}\n{end}\n"
    if begin in old and end in old:
        new = re.sub(re.escape(begin) + r".*?" + re.escape(end) + r"\n?", lambda _: block, old, flags=re.S)
    else:
        new = old.rstrip("\n") + "\n\n" + block
    README.write_text(new)
