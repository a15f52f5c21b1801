"""SIGTERM handled as ^C: cifarkit.signals, and every benchmark script that makes temp folders installs it."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys

import pytest
from conftest import REPO, signal_when

from cifarkit import signals

CHILD = """
import sys, tempfile, time
from cifarkit.signals import stop_on_sigterm
stop_on_sigterm({exit_code})
try:
    with tempfile.TemporaryDirectory(prefix="held-") as tmp:
        print(tmp, flush=True)
        time.sleep(60)
except KeyboardInterrupt as exc:
    print(type(exc).__name__, flush=True)
    sys.exit(7)
"""


def _terminate_child(tmp_path, exit_code):
    env = dict(os.environ, PYTHONPATH=str(REPO), TMPDIR=str(tmp_path))
    code = CHILD.format(exit_code=exit_code)
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
    held = []

    def holds_a_folder():
        held.append(proc.stdout.readline().strip())  # blocks until the child prints its folder (or ends)
        assert held[0] and os.path.isdir(held[0])
        return True

    rest, _ = signal_when(proc, holds_a_folder, what="the temp folder", settle=0.2)
    return proc.returncode, held[0], rest.strip()


def test_sigterm_raises_terminated_where_the_program_is_so_finally_blocks_run(tmp_path):
    returncode, held, printed = _terminate_child(tmp_path, None)
    assert (returncode, printed) == (7, "Terminated")  # caught as a KeyboardInterrupt
    assert not os.path.exists(held)


def test_sigterm_with_an_exit_code_exits_with_it_after_clean_up(tmp_path):
    returncode, held, printed = _terminate_child(tmp_path, signals.EXIT_CODE)
    assert (returncode, printed, signals.EXIT_CODE) == (143, "", 143)
    assert not os.path.exists(held)


BLOCK_CHILD = """
import os, signal, time
from cifarkit.signals import Terminated, stopping_cleanly

calls = []
signal.signal(signal.SIGTERM, lambda *a: calls.append("own handler"))
for signum in (signal.SIGTERM, signal.SIGINT):
    try:
        with stopping_cleanly(before=lambda: calls.append("before")):
            os.kill(os.getpid(), signum)
            time.sleep(30)
    except KeyboardInterrupt as exc:
        calls.append(type(exc).__name__)
os.kill(os.getpid(), signal.SIGTERM)  # the handler found on entry is back
time.sleep(0.1)
signal.signal(signal.SIGINT, signal.SIG_IGN)  # a background job: ^C stays ignored inside the block
with stopping_cleanly(before=lambda: calls.append("before")):
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.1)
    calls.append("ignored")
print(calls, signal.getsignal(signal.SIGINT) is signal.SIG_IGN)
"""


def test_stopping_cleanly_turns_both_signals_into_exceptions_and_puts_the_handlers_back():
    """What ``run_study`` runs inside: ^C and SIGTERM call the clean-up first, then raise; afterwards the
    caller's own handlers are back."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run(
        [sys.executable, "-c", BLOCK_CHILD],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # xdist's workers ignore ^C
    )
    assert out.returncode == 0, out.stderr
    expected = ["before", "Terminated", "before", "KeyboardInterrupt", "own handler", "ignored"]
    assert out.stdout.strip() == f"{expected} True"


def _main_block_calls(path) -> list[str]:
    """The names called in the script's ``if __name__ == "__main__":`` block."""
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
            return [ast.unparse(n.func) for n in ast.walk(node) if isinstance(n, ast.Call)]
    return []


@pytest.mark.parametrize(
    "script", sorted(p.name for p in (REPO / "benchmarks").glob("*.py") if "tempfile" in p.read_text())
)
def test_benchmark_scripts_that_make_temp_folders_remove_them_on_sigterm(script):
    calls = _main_block_calls(REPO / "benchmarks" / script)
    assert "stop_on_sigterm" in calls, f"{script} makes temp folders but leaves them when killed"
