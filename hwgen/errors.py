"""Errors that reach the user as one line (the CLI prints them and exits 2)."""

from __future__ import annotations

import unicodedata


class HwgenError(Exception):
    """A problem with the user's input, reported without a traceback.

    `where` names the file, node and op so the user can find the culprit.
    """

    def __init__(self, message: str, *, file: str | None = None, node: str | None = None,
                 op: str | None = None, hint: str | None = None, tensor: str | None = None) -> None:
        self.message = message
        self.file = file
        self.node = node
        self.op = op
        self.hint = hint
        self.tensor = tensor
        super().__init__(self.one_line())

    def one_line(self) -> str:
        where = []
        if self.file:
            where.append(str(self.file))
        if self.node is not None:
            where.append(f"node '{_printable(self.node)}'")
        if self.op:
            where.append(f"op {_printable(self.op)}")
        if self.tensor is not None and self.tensor != self.node:
            where.append(f"tensor '{_printable(self.tensor)}'")
        text = ": ".join([", ".join(where), self.message]) if where else self.message
        if self.hint:
            text += f" ({self.hint})"
        return _printable(text)

    def with_file(self, file: str) -> "HwgenError":
        if self.file is None:
            self.file = file
            self.args = (self.one_line(),)
        return self


class UnsupportedError(HwgenError):
    """The model uses something hwgen cannot lower (yet)."""


class ModelError(HwgenError):
    """The model file is malformed or inconsistent."""


def _printable(text: str) -> str:
    """Keep error output on one line and free of control characters (names come from untrusted models):
    C0/C1 controls, line and paragraph separators and invisible format characters (bidi overrides) are
    escaped."""
    out = []
    for ch in str(text):
        if ch in "\r\n\t":
            out.append(" ")
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) > 127 and unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"):
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    line = "".join(out)
    return line if len(line) <= 600 else line[:600] + "..."
