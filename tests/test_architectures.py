"""Ensembles, architecture comparison and the training options for custom data (class weights, pretrained)."""

import json
from pathlib import Path

import numpy as np
import pytest

from cifarkit import run_folder
from cifarkit.analysis import compare_architectures as architectures
from cifarkit.analysis import ensembles as ensemble
from cifarkit.analysis.compare_architectures import ArchSpec, Member


def _member(name, val_probs, test_probs, arch="simple_cnn", epochs=3):
    return Member(
        name=name,
        arch=arch,
        model_path="",
        origin="test",
        epochs=epochs,
        recipe="default",
        train_seconds=1.0,
        params=10,
        flops=100,
        val_probs=val_probs,
        test_probs=test_probs,
        inference_images_per_sec=1.0,
    )


def _noisy_probs(y, acc, k, rng):
    """Probabilities whose argmax is right with probability ``acc`` (independently per example)."""
    n = len(y)
    pred = np.where(rng.random(n) < acc, y, (y + rng.integers(1, k, n)) % k)
    p = rng.random((n, k)) * 0.5
    p[np.arange(n), pred] += 1.0
    return p / p.sum(axis=1, keepdims=True)


def test_soft_and_weighted_vote_by_hand():
    a = np.array([[[0.6, 0.4], [0.2, 0.8]]])
    b = np.array([[[0.1, 0.9], [0.4, 0.6]]])
    probs = np.concatenate([a, b])
    np.testing.assert_allclose(ensemble.soft_vote(probs), [[0.35, 0.65], [0.3, 0.7]])
    np.testing.assert_allclose(ensemble.weighted_vote(probs, [3, 1]), [[0.475, 0.525], [0.25, 0.75]])
    with pytest.raises(ValueError, match="weights"):
        ensemble.weighted_vote(probs, [1, 2, 3])
    with pytest.raises(ValueError, match="non-negative"):
        ensemble.weighted_vote(probs, [-1, 2])


def test_hard_vote_majority_and_tie_break():
    # three models, two examples, three classes
    p = np.array(
        [
            [[0.8, 0.1, 0.1], [0.5, 0.4, 0.1]],
            [[0.7, 0.2, 0.1], [0.1, 0.5, 0.4]],
            [[0.1, 0.1, 0.8], [0.1, 0.2, 0.7]],
        ]
    )
    # example 0: class 0 has two votes -> 0. example 1: one vote each; the mean probabilities are
    # (0.233, 0.367, 0.4) so the tie goes to class 2
    np.testing.assert_array_equal(ensemble.hard_vote(p), [0, 2])


def test_fit_weights_prefers_the_better_model():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 2000)
    good, bad = _noisy_probs(y, 0.9, 10, rng), _noisy_probs(y, 0.3, 10, rng)
    w = ensemble.fit_weights(np.stack([good, bad]), y)
    assert w.sum() == pytest.approx(1.0)
    assert w[0] > 0.8 > w[1]

    # the fitted weights are at least as good on validation NLL as equal weights
    def nll(weights):
        mix = ensemble.weighted_vote(np.stack([good, bad]), weights)
        return -np.mean(np.log(mix[np.arange(len(y)), y]))

    assert nll(w) <= nll([0.5, 0.5]) + 1e-9


def test_ensemble_of_independent_members_beats_the_best_one():
    rng = np.random.default_rng(1)
    k, n = 10, 4000
    y_val, y_test = rng.integers(0, k, n), rng.integers(0, k, n)
    members = [_member(f"m{i}", _noisy_probs(y_val, 0.7, k, rng), _noisy_probs(y_test, 0.7, k, rng)) for i in range(3)]
    out = architectures.evaluate_ensembles(members, y_val, y_test, n_boot=200)
    assert set(out["methods"]) == {"soft", "hard", "weighted"}
    soft = out["methods"]["soft"]
    # three independent 70% voters: the majority is right far more often than any one of them
    assert soft["test_acc"] > out["best_member_test_acc"] + 0.05
    assert soft["gain_ci"][0] > 0 and soft["mcnemar_vs_best"]["p_value"] < 1e-6
    assert soft["test_acc_ci"][0] <= soft["test_acc"] <= soft["test_acc_ci"][1]
    assert out["best_method"] in out["methods"]
    assert out["ensemble_gain"] == out["methods"][out["best_method"]]["gain"]
    with pytest.raises(ValueError, match="at least two"):
        architectures.evaluate_ensembles(members[:1], y_val, y_test)


def test_pareto_mask():
    cost = [1, 2, 3, 4, 2]
    acc = [0.5, 0.7, 0.6, 0.9, 0.7]
    # (3, 0.6) is dominated by (2, 0.7); the two equal points (2, 0.7) do not dominate each other
    np.testing.assert_array_equal(architectures.pareto_mask(cost, acc), [True, True, False, True, True])


def test_parse_architectures_and_errors():
    specs = architectures.parse_architectures("resnet20:default:8, simple_cnn ,fastnet:fast")
    assert specs == [
        ArchSpec("resnet20", "default", 8),
        ArchSpec("simple_cnn", "default", 0),
        ArchSpec("fastnet", "fast", 0),
    ]
    assert specs[0].folder == "06_resnet20_default_8ep"
    assert architectures.parse_architectures("") == []
    with pytest.raises(ValueError, match="Unknown model 'resnet21'.*Known models"):
        architectures.parse_architectures("resnet21")
    with pytest.raises(ValueError, match="Unknown recipe"):
        architectures.parse_architectures("resnet20:nope")
    with pytest.raises(ValueError, match="integer"):
        architectures.parse_architectures("resnet20:default:x")
    # a seed as large as SEED allows, not more (scikit-learn refuses 2**32 inside the kernel)
    assert architectures.parse_architectures("fastnet:fast:1:2147483647")[0].seed == architectures.MAX_SEED
    with pytest.raises(ValueError, match=r"at most 2,147,483,647 \(as SEED is\); got 'fastnet:fast:1:2147483648'"):
        architectures.parse_architectures("fastnet:fast:1:2147483648")
    notebooks = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("0*.py"))
    seed_lines = [line for nb in notebooks for line in nb.read_text().splitlines() if line.startswith("SEED: int")]
    assert len(seed_lines) == len(notebooks) == 7
    assert all(f"# [0, {architectures.MAX_SEED}] seed" in line for line in seed_lines)


def test_replication_table_states_epochs():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 10, 500)
    m = _member(
        "resnet20/default/8ep", _noisy_probs(y, 0.8, 10, rng), _noisy_probs(y, 0.8, 10, rng), arch="resnet20", epochs=8
    )
    t = architectures.replication_table([m], y, y).set_index("model")
    assert t.loc["resnet20", "published_error_pct"] == 8.75
    assert t.loc["resnet20", "epochs_run"] == 8
    assert t.loc["resnet20", "measured_error_pct"] == pytest.approx(100 * (1 - m.test_acc(y)), abs=0.01)
    note = t.loc["resnet20", "comparison"]
    assert note.startswith("for reference only") and "8 of the paper's 164 epochs" in note
    assert "not the paper's" in note and "not the full CIFAR-10" in note
    assert t.loc["resnet20", "reasons"] == [
        "8 of the paper's 164 epochs",
        "recipe 'default', not the paper's",
        "not the full CIFAR-10",
    ]
    assert "densenet_bc_100" not in t.index  # architectures this run did not train get no empty row
    # the paper's recipe, all its epochs, the full data: a replication
    full = _member("r", m.val_probs, m.test_probs, arch="resnet20", epochs=164)
    full.recipe = "paper"
    t = architectures.replication_table([full], y, y, full_data=True).set_index("model")
    assert t.loc["resnet20", "comparison"] == "replication" and t.loc["resnet20", "reasons"] == []


def test_full_cifar10_is_recognized_by_content():
    from types import SimpleNamespace

    from cifarkit.data import CIFAR10_CLASSES

    def ds(names, train, val, test):
        return SimpleNamespace(class_names=names, y_train=np.zeros(train), y_val=np.zeros(val), y_test=np.zeros(test))

    assert architectures.full_cifar10(ds(list(CIFAR10_CLASSES), 45_000, 5_000, 10_000))[0]
    ok, why = architectures.full_cifar10(ds(list(CIFAR10_CLASSES), 4_500, 500, 1_000))
    assert not ok and "5,000 training and 1,000 test images" in why
    assert not architectures.full_cifar10(ds(["cat", "dog"], 45_000, 5_000, 10_000))[0]


def test_unique_names():
    rng = np.random.default_rng(0)
    p = rng.random((4, 3))
    ms = architectures.unique_names([_member("a", p, p), _member("a", p, p), _member("b", p, p)])
    assert [m.name for m in ms] == ["a", "a #2", "b"]


@pytest.fixture(scope="module")
def tiny_ds():
    from cifarkit.data import load_dataset

    return load_dataset("synthetic:30", image_size=32, progress=False)


def test_load_run_model_errors(tmp_path, tiny_ds):
    from cifarkit.training import resolve_recipe, train

    with pytest.raises(FileNotFoundError, match="Run 03_train"):
        run_folder.load_model(tmp_path / "missing.keras", 4)
    res = train(
        tiny_ds, resolve_recipe("default", model="simple_cnn", epochs=1, batch_size=32), tmp_path / "m", progress=False
    )
    with pytest.raises(ValueError, match="predicts 4 classes but the data has 3"):
        run_folder.load_model(res.paths["model"], 3)
    assert run_folder.load_model(res.paths["model"], 4).output_shape[-1] == 4


def test_a_seed_of_the_training_notebooks_model_trains_with_its_recorded_settings(tmp_path, tiny_ds):
    """06's ``simple_cnn:default:1:3`` beside a 03 that trained simple_cnn/default for 1 epoch with settings of
    its own (as 02's tuned ones would be): the seed trains with 03's settings, only the seed changed."""
    from cifarkit.training import TrainConfig, resolve_recipe

    run_dir = tmp_path / "run"
    tuned = resolve_recipe("default", model="simple_cnn", epochs=1, batch_size=16, lr=0.03, label_smoothing=0.05)
    assert tuned.batch_size != resolve_recipe("default", model="simple_cnn").batch_size
    run_folder.record_metrics(
        run_dir, run_folder.TRAIN, {"model": "simple_cnn", "recipe": "default", "config": tuned.to_dict()}
    )
    seed_spec = architectures.parse_architectures("simple_cnn:default:1:3")[0]
    member = architectures.train_member(tiny_ds, seed_spec, run_dir, progress=False)
    trained = json.loads((run_folder.model_dir(run_dir, seed_spec.folder) / "metrics.json").read_text())["config"]
    assert trained == tuned.replace(seed=3).to_dict()
    assert member.origin == "trained in 06 with 03's settings" and member.seed == 3 and member.epochs == 1
    # other epochs, another recipe or model: a compared architecture, with its recipe's settings
    for other in ("simple_cnn:default:2:3", "simple_cnn:fast:1:3", "resnet20:default:1:3"):
        spec = architectures.parse_architectures(other)[0]
        config = resolve_recipe(spec.recipe, model=spec.model, seed=3, epochs=spec.epochs)
        assert architectures.main_model_settings(run_dir, spec, config) is None, other
    again = resolve_recipe("default", model="simple_cnn", seed=3, epochs=1)
    assert architectures.main_model_settings(run_dir, seed_spec, again) == TrainConfig.from_dict(tuned.to_dict())
    # no 03 in the run folder: nothing to follow
    assert architectures.main_model_settings(tmp_path / "elsewhere", seed_spec, again) is None


def test_a_seed_that_repeats_the_training_notebooks_own_moves_to_the_next_unused_one(tmp_path):
    """The standard profile's ``fastnet:fast8:10:1,fastnet:fast8:10:2`` under ``-p SEED 1``: the first would train 03's
    model again with its own seed (training is seeded: the same model), so it moves to 2, and the second to 3; other
    architectures and runs without the collision are left as they are."""
    from cifarkit.training import resolve_recipe

    run_dir = tmp_path / "run"

    def trained_03(seed):
        config = resolve_recipe("default", model="simple_cnn", epochs=1, seed=seed)
        run_folder.record_metrics(
            run_dir, run_folder.TRAIN, {"model": "simple_cnn", "recipe": "default", "config": config.to_dict()}
        )

    specs = architectures.parse_architectures("simple_cnn:default:1:1, simple_cnn:default:1:2, resnet20:default:1:1")
    trained_03(seed=1)
    moved, notes = architectures.separate_seeds(specs, run_dir)
    assert [s.seed for s in moved] == [2, 3, 1] and [s.label for s in moved][:2] == [
        "simple_cnn/default/1ep/seed2",
        "simple_cnn/default/1ep/seed3",
    ]
    assert moved[0].folder == "06_simple_cnn_default_1ep_seed2"
    assert notes == [
        f"simple_cnn/default/1ep/seed{a} names seed {a}, which 03_train's model was already trained with in this run "
        f"(its own seed or an earlier entry's): trained with seed {b} instead, the next one not used"
        for a, b in ((1, 2), (2, 3))
    ]
    trained_03(seed=0)  # the profile's own seed: nothing collides, nothing moves
    assert architectures.separate_seeds(specs, run_dir) == (specs, [])
    trained_03(seed=2)  # only the second entry collides
    assert [s.seed for s in architectures.separate_seeds(specs, run_dir)[0]] == [1, 3, 1]
    # no 03 recorded in the run folder: no seed of its model to guard
    assert architectures.separate_seeds(specs, tmp_path / "elsewhere") == (specs, [])


def test_class_weights_and_pretrained_backbone(tmp_path, tiny_ds):
    """Balanced class weights reach the loss; a saved model's layers seed a new run (fine-tuning)."""
    from dataclasses import replace

    from cifarkit.training import resolve_recipe, train
    from cifarkit.training.optim import balanced_class_weights

    np.testing.assert_allclose(balanced_class_weights(np.array([0, 0, 0, 1]), 3), [4 / 9, 4 / 3, 0.0])
    # make the data imbalanced: keep a third of class 0's training images
    keep = np.ones(len(tiny_ds.y_train), dtype=bool)
    idx0 = np.flatnonzero(tiny_ds.y_train == 0)
    keep[idx0[len(idx0) // 3 :]] = False
    ds = replace(tiny_ds, x_train=tiny_ds.x_train[keep], y_train=tiny_ds.y_train[keep])
    base = resolve_recipe("default", model="simple_cnn", epochs=1, batch_size=32)
    first = train(ds, base, tmp_path / "scratch", progress=False)
    assert first.metrics["pretrained"]["path"] is None and "from scratch" in first.metrics["pretrained"]["note"]
    assert first.metrics["class_weights"] is None
    tuned = train(
        ds,
        base.replace(class_weight="balanced", pretrained=str(first.paths["model"])),
        tmp_path / "tuned",
        progress=False,
    )
    w = tuned.metrics["class_weights"]
    assert w[0] > 1.0 > w[1]  # the rare class weighs more
    info = tuned.metrics["pretrained"]
    assert info["layers_copied"] > 0 and info["weights_copied"] > 0
    saved = json.loads((tmp_path / "tuned" / "metrics.json").read_text())
    assert saved["pretrained"]["path"] == str(first.paths["model"].resolve())
    with pytest.raises(FileNotFoundError, match="downloads nothing"):
        train(ds, base.replace(pretrained=str(tmp_path / "nope.keras")), tmp_path / "bad", progress=False)
    with pytest.raises(ValueError, match="class_weight must be one of"):
        base.replace(class_weight="heavy")


def test_a_pretrained_file_keras_cannot_read_is_named_with_what_to_do(tmp_path):
    """A damaged or renamed file: Keras reads what is not a zip as a legacy TensorFlow file and failed with "No
    module named 'tensorflow'"; the file is checked first. A real saved model and weights file still load."""
    from cifarkit.models import build_model
    from cifarkit.training.transfer import transfer_weights

    model = build_model("simple_cnn", input_shape=(16, 16, 3), num_classes=3, widths=[4, 8], dense_units=8)
    for name, kind in (
        ("model.keras", "a zip archive"),
        ("model.weights.h5", "an HDF5 file"),
        ("m.h5", "an HDF5 file"),
    ):
        (tmp_path / name).write_text("not a model")
        label = "." + name.split(".", 1)[1]
        with pytest.raises(ValueError, match=f"{name} is not {kind}, as a Keras {label} file is: damaged"):
            transfer_weights(model, tmp_path / name)
    (tmp_path / "model.pt").write_bytes(b"\x89HDF\r\n\x1a\n")
    with pytest.raises(ValueError, match=r"must be a .keras model or a .weights.h5 file .*, or a legacy .h5 model"):
        transfer_weights(model, tmp_path / "model.pt")
    model.save(tmp_path / "saved.keras")
    model.save_weights(tmp_path / "saved.weights.h5")
    model.save(tmp_path / "saved.h5")  # Keras 3 still writes and reads the legacy HDF5 model format
    for saved in ("saved.keras", "saved.weights.h5", "saved.h5"):
        assert transfer_weights(model, tmp_path / saved)["layers_copied"] > 0


def test_seeds_parse_and_train_into_their_own_folders():
    (a, b) = architectures.parse_architectures("fastnet:fast:0:1, resnet20:default:8")
    assert (a.model, a.recipe, a.epochs, a.seed) == ("fastnet", "fast", 0, 1) and b.seed is None
    assert (
        a.folder == "06_fastnet_fast_seed1"
        and a.label == "fastnet/fast/seed1"
        and b.folder == "06_resnet20_default_8ep"
    )
    with pytest.raises(ValueError, match="integers"):
        architectures.parse_architectures("fastnet:fast:0:x")
    with pytest.raises(ValueError, match=">= 0"):
        architectures.parse_architectures("fastnet:fast:0:-1")


def test_seed_variation_of_the_training_notebooks_model():
    y = np.array([0, 1, 0, 1])
    right, half = np.eye(2)[y], np.eye(2)[[0, 0, 0, 0]]
    m0, m1, other = (
        _member("a", right, right, epochs=3),
        _member("b", half, half, epochs=3),
        _member("c", right, right, arch="resnet20"),
    )
    m0.seed, m1.seed, other.seed = 0, 1, 2
    v = architectures.seed_variation([m0, m1, other], y)
    assert v["n"] == 2 and v["seeds"] == [0, 1] and v["test_accs"] == [1.0, 0.5]
    assert v["mean"] == 0.75 and v["sd"] == pytest.approx(np.std([1.0, 0.5], ddof=1))
    m1.seed = 0
    assert architectures.seed_variation([m0, m1], y) is None  # one seed: no spread to report
    assert architectures.no_seed_variation_reason([m0, m1, other]).startswith("This run trains the model with one")
    # trained again for fewer epochs (a budget that cut the seeds and not 03): other models, and the reader is told
    m1.seed, m1.epochs = 1, 1
    assert architectures.seed_variation([m0, m1, other], y) is None
    reason = architectures.no_seed_variation_reason([m0, m1, other])
    assert "trained again in this run, but for 1 epoch against the training notebook's 3:" in reason
    assert reason.startswith(f"{m0.arch} with the {m0.recipe} recipe")


def test_ensemble_members_are_chosen_and_calibrated_on_validation():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 10, 800)
    strong = [_noisy_probs(y, 0.8, 10, rng) for _ in range(3)]
    weak = _noisy_probs(y, 0.3, 10, rng)
    members = [_member(f"m{i}", p, p) for i, p in enumerate(strong)] + [_member("weak", weak, weak)]
    ens = architectures.evaluate_ensembles(members, y, y, n_boot=100)
    assert ens["left_out"] == ["weak"] and ens["members"] == ["m0", "m1", "m2"]
    assert len(ens["temperatures"]) == 3 and all(t > 0 for t in ens["temperatures"])
    # a confident and an unconfident copy of the same predictions vote on one scale after calibration
    sharp = np.eye(10)[strong[0].argmax(1)] * 0.99 + 0.001
    val_cal, test_cal, temps = ensemble.calibrate(np.stack([strong[0], sharp]), np.stack([strong[0], sharp]), y)
    assert temps[1] > temps[0] and np.allclose(val_cal.sum(axis=2), 1.0)
    assert (val_cal.argmax(axis=2) == np.stack([strong[0], sharp]).argmax(axis=2)).all()  # no prediction changes


def _hand_ensemble(weights):
    def vote(val, test, ci, gain, gci, p, w=None):
        return {"val_acc": val, "test_acc": test, "test_acc_ci": ci, "gain": gain, "gain_ci": gci,
                "mcnemar_vs_best": {"p_value": p}, "weights": w}  # fmt: skip

    return {
        "members": ["fastnet <b>#1</b>", "fastnet #2"],
        "left_out": ["resnet20"],
        "temperatures": [0.52, 0.54],
        "best_member": "fastnet <b>#1</b>",
        "best_member_test_acc": 0.9042,
        "methods": {
            "soft": vote(0.9152, 0.9144, [0.9091, 0.9199], 0.0102, [0.0067, 0.0136], 2e-9),
            "hard": vote(0.9140, 0.9136, [0.9080, 0.9190], 0.0094, [0.0060, 0.0130], 0.0004),
            "weighted": vote(0.9150, 0.9134, [0.9080, 0.9190], 0.0092, [-0.0010, 0.0130], 0.0312, weights),
        },
        "best_method": "soft",
        "degenerate": max(weights) >= 0.95,  # as evaluate_ensembles records it
    }


def test_the_ensemble_table_and_summary_show_the_votes_as_recorded():
    from cifarkit.analysis import stats

    ens = _hand_ensemble([0.34, 0.29, 0.37])
    table = architectures.ensemble_table(ens)
    assert list(table.index) == ["soft (chosen)", "hard", "weighted"]
    soft, weighted = table.loc["soft (chosen)"], table.loc["weighted"]
    assert soft["validation"] == "91.52%" and soft["test % (95% CI)"] == "91.44\u00a0(90.91-91.99)"
    assert soft["gain, points (95% CI)"] == "+1.02\u00a0(+0.67,\u00a0+1.36)"
    assert soft["McNemar p"] == stats.p_value_text(2e-9) and soft["weights"] == ""
    assert (
        weighted["gain, points (95% CI)"] == "+0.92\u00a0(-0.10,\u00a0+1.30)"
        and weighted["weights"] == "0.34, 0.29, 0.37"
    )
    text = architectures.ensemble_summary(ens)
    assert "<b>" not in text and "left out as too weak on validation" in text and "resnet20" in text
    assert "temperatures 0.52, 0.54" in text and "**soft vote**, scores **91.44%**" in text
    assert "+1.02 points (95% CI +0.67 to +1.36)" in text and "degenerate" not in text
    degenerate = architectures.ensemble_summary(_hand_ensemble([0.97, 0.02, 0.01]))
    assert "The weighted vote is degenerate: one member carries 0.97 of the weight" in degenerate


def test_key_results_say_degenerate_as_06_recorded_it():
    from cifarkit.report.key_results import key_results

    def says(ens):
        return " ".join(key_results("06_architectures_and_ensembles", {"ensembles": ens})[1])

    assert "degenerate: one member carries 0.97" in says(_hand_ensemble([0.97, 0.02, 0.01]))
    assert "degenerate" not in says(_hand_ensemble([0.34, 0.29, 0.37]))
    # the recorded flag decides, not a second reading of the weights
    assert "degenerate" not in says({**_hand_ensemble([0.97, 0.02, 0.01]), "degenerate": False})
    older = _hand_ensemble([0.97, 0.02, 0.01])
    del older["degenerate"]  # metrics from before 06 recorded the flag
    assert "degenerate: one member carries 0.97" in says(older)
