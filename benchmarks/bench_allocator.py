"""Benchmark: training steps with glibc malloc's default thresholds against cifarkit's (``cifarkit.allocator``).

Each child process (a fresh one per measurement, as a notebook's kernel is) times fastnet's training step with
the time estimate's probe (:func:`cifarkit.report.estimate_probe.probe_model`: the ``fast`` recipe's real
``TrainStep`` and augmentation, random images, the median step) twice: first before anything in the process has
run an evaluation pass, then again, with a new model, after the first probe's inference passes (batches of 512).
With glibc's defaults the second reads faster, because the evaluation's large freed blocks raise malloc's mmap
threshold; with ``cifarkit.allocator``'s thresholds both should read alike. The children alternate
``CIFARKIT_MALLOC=default`` and ``tuned`` within each round, in float32 and bf16 autocast (where the CPU has
native bf16 units; elsewhere ``auto`` is float32 too and is skipped).

Usage:
    python benchmarks/bench_allocator.py [--rounds 2] [--precision both|off|auto] [--output PATH]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from cifarkit import signals  # noqa: E402  (the checkout's package, from the line above)

MODES = ("default", "tuned")


def child(precision: str) -> dict:
    """Both probes in this process; the allocator's settings as ``CIFARKIT_MALLOC`` made them."""
    from cifarkit import allocator, backend
    from cifarkit.report.estimate_probe import probe_model

    backend.torch()
    settings = {} if precision == "auto" else {"mixed_precision": precision}
    job = {"model": "fastnet", "recipe": "fast", "settings": settings, "n_train": 5000, "epochs": 1}
    first = probe_model(job, 32, 10, step_seconds=8.0, min_steps=10)
    second = probe_model(job, 32, 10, step_seconds=8.0, min_steps=10, infer=False)
    return {
        "allocator": allocator.settings(),
        "precision": first["precision"],
        "before_eval_img_per_s": first["train_img_per_s"],
        "after_eval_img_per_s": second["train_img_per_s"],
        "steps_timed": [first["steps_timed"], second["steps_timed"]],
    }


def run_child(precision: str, mode: str) -> dict:
    env = dict(os.environ, CIFARKIT_MALLOC=mode)
    out = signals.run_child(
        [sys.executable, __file__, "--child", precision], env=env, what=f"CIFARKIT_MALLOC={mode} child"
    )
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--precision", choices=["both", "off", "auto"], default="both")
    ap.add_argument("--output", default=None, help="JSON to write (default: print only)")
    ap.add_argument("--child", choices=["off", "auto"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    os.environ.setdefault("KERAS_BACKEND", "torch")
    if args.child:
        print(json.dumps(child(args.child)))
        return 0
    from cifarkit.backend import cpu_native_bf16

    precisions = ["off", "auto"] if args.precision == "both" else [args.precision]
    if "auto" in precisions and not cpu_native_bf16():
        print("this CPU has no native bf16 units: 'auto' trains in float32, timed as 'off' only")
        precisions = ["off"]
    rows = []
    for r in range(args.rounds):
        for precision in precisions:
            for mode in MODES:
                row = {"round": r + 1, "mode": mode, **run_child(precision, mode)}
                rows.append(row)
                print(
                    f"round {r + 1} {row['precision']:>8} malloc {mode:>7} ({row['allocator']['malloc']}): "
                    f"{row['before_eval_img_per_s']:.0f} img/s before an evaluation pass, "
                    f"{row['after_eval_img_per_s']:.0f} after",
                    flush=True,
                )
    summary = {}
    for precision in sorted({row["precision"] for row in rows}):
        mean = {}
        for mode in MODES:
            these = [row for row in rows if row["precision"] == precision and row["mode"] == mode]
            mean[mode] = {
                key: round(sum(row[key] for row in these) / len(these), 1)
                for key in ("before_eval_img_per_s", "after_eval_img_per_s")
            }
        summary[precision] = {
            "mean": mean,
            "tuned_over_default_before_eval": round(
                mean["tuned"]["before_eval_img_per_s"] / mean["default"]["before_eval_img_per_s"], 3
            ),
            "tuned_over_default_after_eval": round(
                mean["tuned"]["after_eval_img_per_s"] / mean["default"]["after_eval_img_per_s"], 3
            ),
            "default_after_over_before": round(
                mean["default"]["after_eval_img_per_s"] / mean["default"]["before_eval_img_per_s"], 3
            ),
            "tuned_after_over_before": round(
                mean["tuned"]["after_eval_img_per_s"] / mean["tuned"]["before_eval_img_per_s"], 3
            ),
        }
        s = summary[precision]
        print(
            f"{precision}: tuned/default {s['tuned_over_default_before_eval']:.3f} before an evaluation pass, "
            f"{s['tuned_over_default_after_eval']:.3f} after; after/before {s['default_after_over_before']:.3f} "
            f"(default), {s['tuned_after_over_before']:.3f} (tuned)"
        )
    if args.output:
        from cifarkit import files, provenance

        record = {
            "benchmark": "allocator",
            "command": provenance.command_line(__file__, argv),
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": provenance.hardware_info(),
            "git": provenance.git_info(),
            "data": "random uint8 images, 32x32 (the time estimate's probe)",
            "rows": rows,
            "summary": summary,
        }
        files.atomic_write_json(Path(args.output), record)
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    signals.stop_on_sigterm(signals.EXIT_CODE)  # kill PID stops the run as ^C does, and its child with it
    raise SystemExit(main())
