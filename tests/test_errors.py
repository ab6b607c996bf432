"""dcgan.errors.one_line: errors quoted inside our one-line messages."""

from __future__ import annotations

from dcgan.errors import one_line


def test_one_line_keeps_the_type_and_joins_lines():
    assert one_line(ValueError("bad\n  value\tthere")) == "ValueError: bad value there"
    assert one_line(KeyError()) == "KeyError:"


def test_one_line_is_cut_at_the_limit():
    text = one_line(RuntimeError("x" * 500), limit=40)
    assert len(text) == 40 and text.startswith("RuntimeError: xxx") and text.endswith("…")
    assert one_line(RuntimeError("x" * 146)) == "RuntimeError: " + "x" * 146  # 160: not cut
