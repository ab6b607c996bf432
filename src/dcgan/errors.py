"""One clear line for bad input: the error type every stage reports without a traceback."""

from __future__ import annotations

import os
import sys
from typing import Callable

from dcgan import threads


class UserError(Exception):
    """A problem the user can fix (bad params, missing data, no network).

    The message is one line that names the fix; stages print it and exit non-zero.
    """


def one_line(err: BaseException, limit: int = 160) -> str:
    """``Type: message`` on one line, at most ``limit`` characters.

    For errors quoted inside our own messages: a store error can be pages long and a
    state-dict mismatch lists hundreds of keys, but the message around it must stay one line.
    """
    text = " ".join(f"{type(err).__name__}: {err}".split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def quoted(path: object) -> str:
    """A user's file name for a one-line message: as is when printable, else Python's quoted
    form (``'a\\nb.png'``), so that a newline or a control character in a name cannot split
    the line or hide what follows it."""
    text = str(path)
    return text if text.isprintable() else repr(text)


def run_stage(main: Callable[[], None], interrupted: str = "outputs were not written") -> None:
    """Run a stage's ``main()``, turning a UserError into one line on stderr and exit code 2.

    Among several training processes (torchrun sets RANK) only rank 0 prints it: they all
    meet the same error (a diverged loss, say), and the launcher names any other failure.
    Ctrl-C is one line too, saying ``interrupted`` (what is kept and how to go on) and exit
    code 130.
    torch's CPU threads are chosen first (:mod:`dcgan.threads`).
    """
    try:
        threads.configure()
        main()
    except (UserError, threads.BadThreads) as err:
        if os.environ.get("RANK", "0") == "0":  # one line, whatever a name inside it held
            print(f"error: {' '.join(str(err).splitlines())}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"error: interrupted; {interrupted}", file=sys.stderr)
        sys.exit(130)
