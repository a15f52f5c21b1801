"""SIGTERM handled as ^C is, for the study runner and the benchmark scripts; ^C with a clean-up first.

``kill PID``, a batch scheduler's time limit and ``docker stop`` send SIGTERM, which by default ends Python at
once: no ``finally`` runs, so a run's manifest keeps a notebook "running" and a benchmark's temp folders stay.
:func:`stop_on_sigterm` turns the signal into an exception raised where the program is, so that the clean-up
^C already gets runs too. A second SIGTERM ends the process at once (the default comes back).
:func:`stopping_cleanly` does both for a stretch of code and puts the earlier handlers back afterwards
(:func:`cifarkit.report.runner.run_study` runs inside it, so a caller of the library gets the same stop as
``run_all.py``). :func:`run_child` runs a benchmark's child process so that such a stop reaches the child too.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading

EXIT_CODE = 128 + signal.SIGTERM  # 143, what a shell reports for a process ended by SIGTERM


class Terminated(KeyboardInterrupt):
    """Raised by the handler :func:`stop_on_sigterm` installs: every ``except KeyboardInterrupt`` sees it."""


def stop_on_sigterm(exit_code: int | None = None, before=None) -> None:
    """From now on SIGTERM raises :class:`Terminated` in the main thread (``exit_code``: ``SystemExit`` with it).

    ``before``: called first, in the handler (the study runner kills its notebook's kernel there, before any
    clean-up could ask the kernel to shut down in the middle of a cell). Call this from a script's
    ``if __name__ == "__main__":`` block only: it replaces the process's handler for good
    (:func:`stopping_cleanly` puts it back).
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


@contextlib.contextmanager
def stopping_cleanly(before):
    """Inside the block, SIGTERM and ^C call ``before`` and raise :class:`Terminated` / ``KeyboardInterrupt``
    (as :func:`stop_on_sigterm` and :func:`stop_on_sigint`); the handlers found on entry come back on exit.

    Only the main thread can set handlers: elsewhere the block runs with the process's own. An ignored SIGINT (a
    background job) stays ignored.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    earlier = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        stop_on_sigint(before)
        stop_on_sigterm(before=before)
        yield
    finally:
        for signum, handler in earlier.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


def run_child(command: list[str], env: dict | None = None, what: str = "child") -> str:
    """Run ``command`` and return its stdout. Stopped meanwhile (^C, or SIGTERM after :func:`stop_on_sigterm`), the
    child gets SIGTERM and is waited for (so it removes its own temp folders) before the stop goes on.

    Raises:
        SystemExit: the child failed; the message names ``what`` failed, its exit status and its command.
    """
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    try:
        out, _ = proc.communicate()
    except BaseException:
        proc.terminate()
        proc.wait(timeout=60)
        raise
    if proc.returncode:
        raise SystemExit(f"error: the {what} failed (exit {proc.returncode}): {' '.join(command)}")
    return out
