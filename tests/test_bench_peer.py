"""Tests of ``benchmarks/bench_peer.py``: the speed-ratio arithmetic on hand-made curves, and its dry run
(airbench94 ported to the CPU and fastnet, in float32 and bf16, on tiny synthetic data) when airbench is installed."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import load_script, readme_table_rows, signal_when

from cifarkit.backend import cpu_flags
from cifarkit.provenance import speed_flags

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "bench_peer.py"


@pytest.fixture(scope="module")
def bench():
    return load_script(SCRIPT, "bench_peer_under_test")


def _curve(seconds, accs):
    return [{"epoch": i + 1, "seconds": s, "test_acc": a} for i, (s, a) in enumerate(zip(seconds, accs))]


def test_seconds_to_reach_takes_the_earliest_epoch_over_all_runs(bench):
    curves = {
        2: _curve([5, 5], [0.60, 0.92]),  # reaches 0.9 at its end: 10 s
        4: _curve([5, 5, 5, 5], [0.60, 0.80, 0.90, 0.95]),  # reaches 0.9 at epoch 3: 15 s
    }
    assert bench.seconds_to_reach(curves, 0.9) == {"seconds": 10, "run_epochs": 2, "epoch": 2, "test_acc": 0.92}
    assert bench.seconds_to_reach(curves, 0.95) == {"seconds": 20, "run_epochs": 4, "epoch": 4, "test_acc": 0.95}
    assert bench.seconds_to_reach(curves, 0.5)["seconds"] == 5  # the first epoch
    assert bench.seconds_to_reach(curves, 0.96) is None


def test_speed_ratio_is_peer_seconds_over_fastnet_seconds_to_the_peers_final_accuracy(bench):
    peer = {2: _curve([10, 10], [0.5, 0.7]), 4: _curve([10, 10, 10, 10], [0.5, 0.7, 0.8, 0.9])}
    fast = {2: _curve([5, 5], [0.6, 0.85]), 4: _curve([5, 5, 5, 5], [0.6, 0.8, 0.9, 0.95])}
    out = bench.speed_comparison(peer, fast)
    assert out["target_acc"] == 0.9 and "4 epochs" in out["target_from"]
    assert out["peer"]["seconds"] == 40 and out["peer_longest_run_seconds"] == 40
    assert out["fastnet"] == {"seconds": 15, "run_epochs": 4, "epoch": 3, "test_acc": 0.9}
    assert out["ratio"] == pytest.approx(40 / 15) and out["goal_met"] is True and out["reason"] is None

    slow = {4: _curve([20, 20, 20, 20], [0.6, 0.8, 0.9, 0.95])}
    out = bench.speed_comparison(peer, slow)
    assert out["ratio"] == pytest.approx(40 / 60) and out["goal_met"] is False

    never = {2: _curve([5, 5], [0.6, 0.85]), 4: _curve([5, 5, 5, 5], [0.6, 0.8, 0.88, 0.89])}
    out = bench.speed_comparison(peer, never)
    assert out["ratio"] is None and out["fastnet"] is None and out["goal_met"] is False
    assert "never reached 0.9000" in out["reason"] and "0.8900" in out["reason"]


def test_peer_time_is_its_first_reach_of_the_longest_runs_final_accuracy(bench):
    # a shorter peer run that already ends at the longest run's final accuracy sets the peer's time
    peer = {2: _curve([10, 10], [0.6, 0.9]), 4: _curve([10, 10, 10, 10], [0.5, 0.7, 0.8, 0.9])}
    out = bench.speed_comparison(peer, {2: _curve([4, 4], [0.7, 0.9])})
    assert out["peer"]["seconds"] == 20 and out["peer_longest_run_seconds"] == 40
    assert out["ratio"] == pytest.approx(20 / 8)


def test_accuracy_goal_covers_equal_epoch_counts_up_to_ten(bench):
    peer = {n: {"test_acc": a} for n, a in ((2, 0.80), (8, 0.90), (12, 0.95))}
    fast = {n: {"test_acc": a} for n, a in ((2, 0.81), (8, 0.90), (12, 0.90))}
    out = bench.accuracy_comparison(peer, fast)
    assert [r["epochs"] for r in out["at_equal_epochs"]] == [2, 8, 12]
    assert out["at_equal_epochs"][0]["diff"] == pytest.approx(0.01)
    assert out["epoch_counts_checked"] == [2, 8] and out["goal_met"] is True  # 12 epochs lies past the goal
    fast[8]["test_acc"] = 0.89
    assert bench.accuracy_comparison(peer, fast)["goal_met"] is False


def test_substitutions_must_occur(bench):
    sub = bench.Substitution("utils.py", "torch.cuda.synchronize()", "_peer_cpu_synchronize()", "why")
    text, applied = bench.apply_substitutions({"utils.py": "a\ntorch.cuda.synchronize()\n"}, [sub])
    assert text["utils.py"] == "a\n_peer_cpu_synchronize()\n" and applied[0]["occurrences"] == 1
    with pytest.raises(AssertionError, match="does not occur"):
        bench.apply_substitutions({"utils.py": "nothing here\n"}, [sub])
    with pytest.raises(AssertionError, match="still needs CUDA"):
        bench.apply_substitutions({"utils.py": "torch.cuda.synchronize()\nx.cuda()\n"}, [sub])


def test_steady_seconds_scales_each_epoch_by_the_fastest_reading_over_the_readings_around_it(bench):
    # by hand: 300 s between readings of 1.2 and 1.0 s (mean 1.1), fastest 1.0 -> 300 / 1.1 = 272.727...;
    # 100 s between 1.0 and 1.0 -> unchanged
    rows = [
        {"epoch": 1, "seconds": 300.0, "test_acc": 0.5, "probe_before": 1.2, "probe_after": 1.0},
        {"epoch": 2, "seconds": 100.0, "test_acc": 0.7, "probe_before": 1.0, "probe_after": 1.0},
    ]
    bench.steady_seconds(rows, fastest=1.0)
    assert rows[0]["steady_seconds"] == pytest.approx(272.7272727)
    assert rows[1]["steady_seconds"] == pytest.approx(100.0)
    assert rows[0]["seconds"] == 300.0  # the measured seconds stay


def test_the_steady_ratio_cancels_a_slowdown_that_hits_one_side_and_the_probe_alike(bench):
    # the peer ran while the machine was 1.5x slow (probe 1.5 s against 1.0 s): 3 x 450 s measured is
    # 3 x 300 s steady; fastnet's 2 epochs of 200 s ran at full speed: 900 / 400 = 2.25x steady, 1350 / 400
    # = 3.375x measured
    peer = [
        {"epoch": i + 1, "seconds": 450.0, "test_acc": a, "probe_before": 1.5, "probe_after": 1.5}
        for i, a in enumerate([0.6, 0.75, 0.8])
    ]
    fast = [
        {"epoch": i + 1, "seconds": 200.0, "test_acc": a, "probe_before": 1.0, "probe_after": 1.0}
        for i, a in enumerate([0.7, 0.81])
    ]
    for rows in (peer, fast):
        bench.steady_seconds(rows, fastest=1.0)
    measured = bench.speed_comparison({3: peer}, {2: fast})
    steady = bench.speed_comparison(bench.steady_curves({3: peer}), bench.steady_curves({2: fast}))
    assert measured["ratio"] == pytest.approx(3.375)
    assert steady["ratio"] == pytest.approx(2.25) and steady["peer"]["seconds"] == pytest.approx(900.0)
    assert peer[0]["seconds"] == 450.0  # steady_curves copies; the recorded rows keep their measured seconds


def test_the_drift_probe_records_each_reading_with_its_label(bench):
    probe = bench.DriftProbe(batch=4, steps=1, repeats=3)
    probe.prefix = "[float32] "
    seconds = probe("before the peer 2-epoch run")
    assert probe.records == [
        {"label": "[float32] before the peer 2-epoch run", "seconds": seconds, "repeats": probe.records[0]["repeats"]}
    ]
    assert len(probe.records[0]["repeats"]) == 3 and seconds == sorted(probe.records[0]["repeats"])[1] > 0
    summary = probe.summary()
    assert summary["dtype"] == "float32" and summary["fastest_seconds"] == summary["slowest_seconds"] == seconds
    assert summary["readings"] == probe.records


@pytest.mark.parametrize("dtype, conv_out", [("float32", "torch.float32"), ("bfloat16", "torch.bfloat16")])
def test_the_drift_probe_computes_in_the_precision_it_stands_in_for(bench, dtype, conv_out):
    """A bf16 run's probe convolves in bf16 (autocast over float32 weights, as fastnet trains), a float32 run's in
    float32: a slow spell of one precision's kernels shows in that precision's probe."""
    probe = bench.DriftProbe(batch=4, steps=1, repeats=1, dtype=dtype)
    seen = []
    probe.net[0].register_forward_hook(lambda module, inputs, output: seen.append(str(output.dtype)))
    probe("a reading")
    assert seen == [conv_out]
    assert all(str(p.dtype) == "torch.float32" for p in probe.net.parameters())  # the weights stay float32
    assert probe.summary()["dtype"] == dtype


def test_the_drift_probe_refuses_a_precision_it_does_not_know(bench):
    with pytest.raises(ValueError, match=r"dtype='float16'.*float32, bfloat16"):
        bench.DriftProbe(batch=4, steps=1, dtype="float16")


def _cells(line: str) -> list[str]:
    """A Markdown table row's cells, stripped, bold marks dropped (bold marks whichever side is ahead)."""
    return [c.strip().replace("*", "") for c in line.split("|")[1:-1]]


def _epoch_seconds(curve: list[dict]) -> str:
    """How the tables write a run's seconds per epoch: ``106.4 + 99.7 + ...``."""
    return " + ".join(f"{c['seconds']:.1f}" for c in curve)


def _progressive_rows() -> list[tuple[str, str]]:
    text = (REPO / "benchmarks" / "README.md").read_text()
    rows = [
        line
        for line in text.splitlines()
        if line.startswith("| seed") and "--output benchmarks/results/peer_" in line and "progressive" in line
    ]
    return [(line.split("--output benchmarks/results/")[1].split("`")[0], line) for line in rows]


def _ratio_cell(speed: dict) -> str:
    """How a table cell opens for a speed comparison: the ratio, or "none" where fastnet never reached the target."""
    return "none" if speed["ratio"] is None else f"{speed['ratio']:.2f}x"


def test_the_progressive_resizing_table_holds_the_recorded_runs():
    """Each row of benchmarks/README.md's progressive-resizing tables states what its JSON recorded: both sides'
    accuracy and epoch seconds, the difference and the measured ratio, and where the run read the drift probe the
    steady ratio and the probe's range; each JSON names its command and a quiet start."""
    rows = _progressive_rows()
    assert len(rows) >= 4, rows
    for name, line in rows:
        record = json.loads((REPO / "benchmarks" / "results" / name).read_text())
        ran_as = record.get("renamed", {"from": name})["from"]  # renamed files keep the command they ran with
        assert ran_as in record["command"] and "progressive_size" in record["command"], name
        assert record.get("renamed", {"to": name})["to"] == name
        assert record["load_average_at_start"][0] <= 1.5, name  # nothing else was running
        (epochs,) = record["epoch_counts"]
        (precision,) = record["results"]  # one precision per run, the one its file is named after
        assert name.startswith(f"peer_{precision}_"), name
        block = record["results"][precision]
        run = block["runs"][str(epochs)]
        peer, fast = run["peer"], run["fastnet"]
        cells = _cells(line)
        assert cells[1] == f"{peer['test_acc']:.2%} ({peer['test_acc_tta']:.2%})", name
        assert cells[2] == _epoch_seconds(peer["curve"]), name
        assert cells[3] == f"{fast['test_acc']:.2%}", name
        assert cells[4] == _epoch_seconds(fast["curve"]), name
        assert cells[5] == f"{100 * (fast['test_acc'] - peer['test_acc']):+.2f} points", name
        assert cells[6].startswith(_ratio_cell(block["speed"])), name
        if block["speed"]["ratio"] is None:  # the cell says how far fastnet got instead
            best = max(c["test_acc"] for c in fast["curve"])
            assert cells[6] == f"none (fastnet's best {best:.2%})", name
        probe = block.get("drift_probe", record.get("drift_probe"))  # per precision; one for the run before
        if probe is not None:  # the runs that read it have two more cells
            assert cells[7].startswith(_ratio_cell(block["speed_steady"])), name
            spread = probe["slowest_seconds"] / probe["fastest_seconds"]
            assert cells[8] == f"{probe['fastest_seconds']:.2f}-{probe['slowest_seconds']:.2f} s ({spread:.2f}x)", name
        else:
            assert len(cells) == 7, name


def test_the_readme_side_by_side_table_is_what_the_summary_prints_from_the_records(bench, tmp_path):
    """README.md's table of every recorded run is ``bench_peer.py --summary``'s output, row for row; it holds every
    record of the setting; and its figures are the record's (checked on a hand-made record)."""
    rows = readme_table_rows(bench.SUMMARY_HEADER + bench.summary_rows())
    records = {p.name for p in (REPO / "benchmarks" / "results").glob("peer*progressive20x2*.json")}
    assert {row.split("`")[-2] for row in rows} == records

    def curve(seconds, accs, probes):
        rows = _curve(seconds, accs)
        for row, probe in zip(rows, probes):
            row.update(probe_before=probe, probe_after=probe)
        bench.steady_seconds(rows, 1.0)
        return rows

    peer = curve([40, 40], [0.70, 0.80], [1.0, 2.0])  # its second epoch ran while the probe read half speed
    fast = curve([10, 20], [0.75, 0.81], [1.0, 1.0])
    record = {
        "date": "2026-12-09T10:00:00+00:00",
        "dry_run": False,
        "seed": 3,
        "machine": {"cpu": "AMD EPYC 9B14", "cpu_flags": "avx2 fma"},
        "git": {"commit": "abcdef0123", "dirty": True},
        "fastnet": dict(bench.SUMMARY_SETTING, overrides=dict(bench.SUMMARY_SETTING["overrides"])),
        "results": {
            "float32": {
                "fastnet_mixed_precision": "off",
                "runs": {
                    "2": {
                        "peer": {"test_acc": 0.80, "train_seconds": 80.0, "curve": peer},
                        "fastnet": {"test_acc": 0.81, "train_seconds": 30.0, "curve": fast},
                    }
                },
            }
        },
    }
    (tmp_path / "peer_x.json").write_text(json.dumps(record))
    other = dict(record, fastnet=dict(record["fastnet"], recipe="fast8"))  # another setting: not in the table
    (tmp_path / "peer_y.json").write_text(json.dumps(other))
    overrides = dict(record["fastnet"]["overrides"], optimizer="muon", muon_lr=0.12)  # the same with Muon: a row
    (tmp_path / "peer_z.json").write_text(
        json.dumps(dict(record, fastnet=dict(record["fastnet"], overrides=overrides)))
    )
    # equal epochs: 80 / 30 s measured, (40 + 20) / 30 s steady; fastnet reaches 80% at its end, the peer at its end
    assert bench.summary_rows(tmp_path) == [
        "| AVX2 EPYC | float32 | SGD | 2 | 3 | 81.00% | 80.00% | +1.00 | 2.67x / 2.00x | 2.67x / 2.00x "
        "| abcdef0*, 2026-12-09 | `peer_x.json` |",
        "| AVX2 EPYC | float32 | Muon 0.12 | 2 | 3 | 81.00% | 80.00% | +1.00 | 2.67x / 2.00x | 2.67x / 2.00x "
        "| abcdef0*, 2026-12-09 | `peer_z.json` |",
    ]
    deep = dict(overrides, muon_min_filters=128)  # Muon for the kernels of 128 filters or more: the column says so
    (tmp_path / "peer_z.json").write_text(json.dumps(dict(record, fastnet=dict(record["fastnet"], overrides=deep))))
    assert "| float32 | Muon 0.12, >= 128 filters | 2 | 3 |" in bench.summary_rows(tmp_path)[1]
    (tmp_path / "peer_z.json").unlink()
    fast[-1]["test_acc"] = record["results"]["float32"]["runs"]["2"]["fastnet"]["test_acc"] = 0.79
    (tmp_path / "peer_x.json").write_text(json.dumps(record))
    assert "| -1.00 | 2.67x / 2.00x | not reached |" in bench.summary_rows(tmp_path)[0]


def test_dry_run_trains_both_sides_in_both_precisions(tmp_path):
    if importlib.util.find_spec("airbench") is None:  # not imported: its __init__ needs a working torchvision
        pytest.skip("airbench is not installed (the `peer` extra: pip install airbench==0.1.8 --no-deps)")
    out = tmp_path / "peer.json"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = dict(os.environ, KERAS_BACKEND="torch", PYTHONPATH=str(REPO))
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--dry-run", "--output", str(out)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    seconds = time.perf_counter() - start
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    # a guard against a dry run that trains for real (minutes per epoch), not a speed figure: two steps per side in
    # both precisions took 67 s on the float32-only AVX2 EPYC (bf16 emulated there) beside a second pytest worker
    assert seconds < 180, f"the dry run took {seconds:.0f} s"
    assert list(cwd.iterdir()) == [], "the script wrote into its working directory"
    record = json.loads(out.read_text())

    assert record["dry_run"] is True and "DRY RUN" in record["note"]
    assert "--dry-run" in record["command"] and record["date"].endswith("+00:00")
    assert record["data"]["source"].startswith("synthetic") and record["data"]["counts"]["train"] > 0
    machine = record["machine"]
    assert machine["threads"] >= 1 and machine["torch"] and machine["cpu_flags"] == speed_flags(cpu_flags())
    assert record["epoch_counts"] == [1]
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert record["git"]["commit"] == head and isinstance(record["git"]["dirty"], bool)
    assert len(record["load_average_at_start"]) == 3 and len(record["load_average_at_end"]) == 3

    subs = record["substitutions"]
    assert subs and all(s["occurrences"] >= 1 and s["old"] and s["why"] for s in subs)
    assert {"utils.py", "lib_airbench94.py"} == {s["file"] for s in subs}
    assert any("torch.cuda.Event" in s["old"] for s in subs) and any(".half().cuda()" in s["old"] for s in subs)

    assert set(record["results"]) == {"float32", "bf16"}
    for key, block in record["results"].items():
        assert block["peer_dtype"] == {"float32": "float32", "bf16": "bfloat16"}[key]
        assert block["fastnet_mixed_precision"] == {"float32": "off", "bf16": "bf16"}[key]
        port = block["peer_port"]
        assert port["version"] == "0.1.8" and port["substitutions"]
        assert port["changed_arguments"][0]["name"] == "batch_size"
        assert port["changed_arguments"][0]["used"] <= record["data"]["counts"]["train"] // 2
        run = block["runs"]["1"]
        for side in ("peer", "fastnet"):
            r = run[side]
            assert 0.0 <= r["test_acc"] <= 1.0, (key, side, r)
            assert r["train_seconds"] > 0 and r["wall_seconds"] > 0
            assert len(r["curve"]) == 1 and r["curve"][0]["seconds"] > 0 and 0 <= r["curve"][0]["test_acc"] <= 1
        assert 0.0 <= run["peer"]["test_acc_tta"] <= 1.0
        assert run["fastnet"]["training_precision"] == {"float32": "float32", "bf16": "bfloat16"}[key]
        acc = block["accuracy"]["at_equal_epochs"][0]
        assert acc["diff"] == pytest.approx(run["fastnet"]["test_acc"] - run["peer"]["test_acc"])
        speed = block["speed"]
        assert "ratio" in speed
        if speed["ratio"] is None:
            assert speed["reason"] and speed["goal_met"] is False
        else:
            assert speed["ratio"] > 0 and speed["goal_met"] == (speed["ratio"] >= 1.5)
        # the drift probe: a reading before each run and after each epoch; steady seconds from them
        for side in ("peer", "fastnet"):
            row = run[side]["curve"][0]
            assert row["probe_before"] > 0 and row["probe_after"] > 0
            fastest = block["drift_probe"]["fastest_seconds"]
            assert row["steady_seconds"] == pytest.approx(
                row["seconds"] * fastest / ((row["probe_before"] + row["probe_after"]) / 2)
            )
        steady = block["speed_steady"]
        assert steady["target_acc"] == speed["target_acc"]
        if steady["ratio"] is not None:
            assert steady["ratio"] == pytest.approx(
                run["peer"]["curve"][0]["steady_seconds"] / run["fastnet"]["curve"][0]["steady_seconds"]
            )
        # each precision's own probe, computing in that precision
        probe = block["drift_probe"]
        assert probe["dtype"] == {"float32": "float32", "bf16": "bfloat16"}[key]
        assert [r["label"] for r in probe["readings"]] == [
            f"[{key}] {label}"
            for label in ("before the peer 1-epoch run", "peer 1-epoch run epoch 1")
            + ("before the fastnet 1-epoch run", "fastnet 1-epoch run epoch 1")
        ]
        assert probe["fastest_seconds"] == min(r["seconds"] for r in probe["readings"]) > 0
    assert "drift_probe" not in record  # no run-wide probe mixing the precisions
    assert record["results"]["bf16"]["peer_port"]["bn_mixed_dtype_check"]["ok"] is True
    assert set(record["goals"]["met"]) == {"float32", "bf16"}


def test_a_terminated_run_removes_its_temp_folders(tmp_path):
    """``kill PID`` during a run ends it as Ctrl-C does: exit status 143 and no ``bench_peer_*`` folder left
    behind (each holds ~180 MB of the peer's data on the real archive)."""
    if importlib.util.find_spec("airbench") is None:
        pytest.skip("airbench is not installed (the `peer` extra: pip install airbench==0.1.8 --no-deps)")
    temp = tmp_path / "tmp"
    temp.mkdir()
    log = tmp_path / "stderr.txt"
    env = dict(os.environ, KERAS_BACKEND="torch", PYTHONPATH=str(REPO), TMPDIR=str(temp))
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, str(SCRIPT), "--dry-run", "--output", str(tmp_path / "peer.json")],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        signal_when(proc, lambda: bool(list(temp.glob("bench_peer_*/cifar10/test.pt"))), what="the peer's data")
    assert proc.returncode == 143, log.read_text()[-2000:]
    assert not list(temp.glob("bench_peer_*")), list(temp.iterdir())
    assert not (tmp_path / "peer.json").exists()


def _side_by_side_rows() -> dict[str, list[str]]:
    """benchmarks/README.md's side-by-side table rows (``| 0, airbench94 (float32) | ...``) as cells, keyed by the
    per-epoch seconds cell, which no two runs share."""
    rows = {}
    for line in (REPO / "benchmarks" / "README.md").read_text().splitlines():
        cells = _cells(line)
        if len(cells) == 5 and cells[0][:1].isdigit() and ", " in cells[0]:
            rows[cells[2]] = cells
    return rows


@pytest.mark.parametrize("epochs", [3, 4, 5])
def test_the_avx2_side_by_side_tables_hold_the_recorded_runs(epochs):
    """Each recorded side-by-side run on the AVX2 EPYC at 20 px for two epochs has its two rows in
    benchmarks/README.md, and they state what its JSON recorded: seed, accuracy (the peer's with its TTA), the seconds
    of each epoch, their sum and the drift-corrected (steady) sum."""
    names = sorted(
        (REPO / "benchmarks" / "results").glob(f"peer_float32_{epochs}_epochs_progressive20x2*_epyc_avx2.json")
    )
    assert len(names) >= 2, names  # two seeds at least
    rows = _side_by_side_rows()
    for path in names:
        record = json.loads(path.read_text())
        assert record["epoch_counts"] == [epochs] and record["load_average_at_start"][0] <= 1.5, path.name
        words = record["command"].split()
        assert words[words.index("--epochs") + 1] == str(epochs) and words[words.index("--precision") + 1] == "off"
        run = record["results"]["float32"]["runs"][str(epochs)]
        for side, label in (("peer", "airbench94 (float32)"), ("fastnet", "fastnet `fast`, first two epochs at 20 px")):
            result = run[side]
            per_epoch = _epoch_seconds(result["curve"])
            assert per_epoch in rows, f"{path.name}: no row for the {side}'s epochs {per_epoch}"
            accuracy = f"{result['test_acc']:.2%}"
            if side == "peer":
                accuracy += f" ({result['test_acc_tta']:.2%})"
            steady = sum(c["steady_seconds"] for c in result["curve"])
            expected = [
                f"{record['seed']}, {label}",
                accuracy,
                per_epoch,
                f"{result['train_seconds']:,.1f}",
                f"{steady:,.1f}",
            ]
            assert rows[per_epoch] == expected, path.name
