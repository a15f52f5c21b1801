"""SIGTERM handled as ^C is, for ``run_all.py`` and the benchmark scripts; ^C with a clean-up first.

``kill PID``, a batch scheduler's time limit and ``docker stop`` send SIGTERM, which by default ends Python at
once: no ``finally`` runs, so a run's manifest keeps a notebook "running" and a benchmark's temp folders stay.
:func:`stop_on_sigterm` turns the signal into an exception raised where the program is, so that the clean-up
^C already gets runs too. A second SIGTERM ends the process at once (the default comes back).
"""

from __future__ import annotations

import signal

EXIT_CODE = 128 + signal.SIGTERM  # 143, what a shell reports for a process ended by SIGTERM


class Terminated(KeyboardInterrupt):
    """Raised by the handler :func:`stop_on_sigterm` installs: every ``except KeyboardInterrupt`` sees it."""


def stop_on_sigterm(exit_code: int | None = None, before=None) -> None:
    """From now on SIGTERM raises :class:`Terminated` in the main thread (``exit_code``: ``SystemExit`` with it).

    ``before``: called first, in the handler (``run_all.py`` kills its notebook's kernel there, before any
    clean-up could ask the kernel to shut down in the middle of a cell). Call this from a script's
    ``if __name__ == "__main__":`` block only: it replaces the process's handler.
    """

    def handler(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if before is not None:
            before()
        if exit_code is not None:
            raise SystemExit(exit_code)
        raise Terminated()

    signal.signal(signal.SIGTERM, handler)


def stop_on_sigint(before) -> None:
    """^C calls ``before`` and then raises ``KeyboardInterrupt`` as usual (a second ^C only raises).

    Left alone where SIGINT is ignored (a job started in the background by a non-interactive shell).
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        return

    def handler(signum, frame):
        signal.signal(signal.SIGINT, signal.default_int_handler)
        before()
        raise KeyboardInterrupt()

    signal.signal(signal.SIGINT, handler)
