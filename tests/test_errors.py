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


def test_a_stage_error_is_printed_as_one_line_whatever_it_holds(capsys):
    import pytest

    from dcgan.errors import UserError, run_stage

    def main():
        raise UserError("a/b\nerror: looks like a second line.png: unreadable")

    with pytest.raises(SystemExit) as exit_:
        run_stage(main)
    assert exit_.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_ctrl_c_in_training_says_the_checkpoint_is_kept_and_how_to_resume(capsys):
    """Ctrl-C said only "interrupted; outputs were not written"."""
    import importlib.util

    import pytest

    from helpers import REPO
    from dcgan.errors import run_stage

    spec = importlib.util.spec_from_file_location("train_stage", REPO / "stages/train.py")
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)

    def main():
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as exit_:
        run_stage(main, train.INTERRUPTED)
    assert exit_.value.code == 130
    (line,) = capsys.readouterr().err.splitlines()
    assert "checkpoint of the last finished epoch is kept" in line
    assert "rerun the same command to resume" in line


def test_quoted_names_keep_printable_names_as_they_are():
    from dcgan.errors import quoted

    assert quoted("data/a b.png") == "data/a b.png"
    assert quoted("data/a\nb.png") == "'data/a\\nb.png'"
