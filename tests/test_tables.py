"""Terminal tables: aligned, at most 120 columns (cut, then columns left out and named)."""

from __future__ import annotations

from dcgan import tables


def test_a_table_that_fits_is_aligned_with_numbers_on_the_right():
    text, left_out = tables.text(["loss", "FD"], [["bce", "12 ± 2.8"], ["wgan-gp", "3.5"]])
    assert left_out == []
    assert text.splitlines() == ["loss           FD", "───────  ────────",
                                 "bce      12 ± 2.8", "wgan-gp       3.5"]


def test_a_wide_table_cuts_then_leaves_out_columns_in_order():
    header = ["id", "recipe", "a", "b"]
    rows = [["x" * 40, "lr_g=0.0002 ema=none beta1=0.5", "1" * 30, "2" * 30]]
    text, left_out = tables.text(header, rows, width=90, shrink=["recipe"], drop=["a", "b"])
    assert left_out == ["a"]
    lines = text.splitlines()
    assert max(map(len, lines)) <= 90 and lines[2].split()[1] == "lr_g=0.0002…"


def test_markdown_and_wrap():
    assert tables.markdown(["a", "b"], [["1", "2"]]) == "| a | b |\n|---|---|\n| 1 | 2 |\n"
    wrapped = tables.wrap("word " * 40 + "/a/very/long/path/" * 5, width=50)
    assert all(len(line) <= 50 for line in wrapped.splitlines()[:-1])
    assert wrapped.splitlines()[-1] == "/a/very/long/path/" * 5  # a path is never split
