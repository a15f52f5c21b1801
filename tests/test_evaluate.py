"""Evaluation (cifarkit.analysis.evaluation, saliency, inference): metrics against scikit-learn and hand computations, calibration, corruptions,
saliency on the registered models, model loading, and notebook 04 run through run_all's code path."""

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from cifarkit import backend, models, run_folder
from cifarkit.analysis import corruptions, evaluation, saliency
from cifarkit.training import inference

keras = backend.keras()


# --------------------------------------------------------------------------- helpers


def _random_probs(n, k, seed=0, scale=2.0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, scale, size=(n, k))
    return logits, inference.softmax(logits)


def _sample_labels(probs, seed=1):
    """Labels drawn from the predicted distribution: a perfectly calibrated predictor."""
    rng = np.random.default_rng(seed)
    cum = probs.cumsum(axis=1)
    u = rng.random(len(probs))[:, None]
    return np.minimum((u > cum).sum(axis=1), probs.shape[1] - 1)


def _brightness_model(size=8):
    """Class 0 when an image's mean pixel is above 128, else class 1 (a hand-set linear model)."""
    inputs = keras.Input((size, size, 3))
    x = keras.layers.GlobalAveragePooling2D(data_format="channels_last")(inputs)
    dense = keras.layers.Dense(2)
    out = dense(x)
    model = keras.Model(inputs, out)
    w = np.full((3, 2), 1.0 / 3.0, dtype="float32")
    w[:, 1] *= -1
    dense.set_weights([w, np.array([-128.0, 128.0], dtype="float32")])
    return model


def _cam_model(data_format, num_classes=3, size=8, seed=0):
    """conv -> global average pool -> dense: Grad-CAM equals CAM (Zhou et al. 2016) in closed form."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    if data_format == "channels_first":
        x = keras.layers.Permute((3, 1, 2))(x)
    conv = keras.layers.Conv2D(5, 3, padding="same", activation="relu", data_format=data_format, name="features")
    x = conv(x)
    x = keras.layers.GlobalAveragePooling2D(data_format=data_format)(x)
    dense = keras.layers.Dense(num_classes, name="logits")
    return keras.Model(inputs, dense(x)), dense


def _images(n=6, size=8, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)


# --------------------------------------------------------------------------- classification metrics


def test_classification_metrics_match_scikit_learn():
    k, n = 5, 400
    _, probs = _random_probs(n, k, seed=3)
    y = _sample_labels(probs, seed=4)
    pred = probs.argmax(1)
    names = [f"c{i}" for i in range(k)]
    m = evaluation.classification_metrics(y, probs, names, n_boot=300, seed=0)
    assert m["n"] == n
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["accuracy_ci"][0] <= m["accuracy"] <= m["accuracy_ci"][1]
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m["macro"]["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert m["weighted"]["f1"] == pytest.approx(skm.f1_score(y, pred, average="weighted"))
    assert m["weighted"]["recall"] == pytest.approx(m["accuracy"])
    p, r, f, s = skm.precision_recall_fscore_support(y, pred, labels=range(k), zero_division=0)
    for i, name in enumerate(names):
        assert m["per_class"][name] == pytest.approx({"precision": p[i], "recall": r[i], "f1": f[i], "support": s[i]})
    np.testing.assert_array_equal(m["confusion_matrix"], skm.confusion_matrix(y, pred, labels=range(k)))
    for kk in (1, 3):
        assert m["top_k"][kk] == pytest.approx(skm.top_k_accuracy_score(y, probs, k=kk, labels=range(k)))
    assert m["top_k"][5] == 1.0  # k = number of classes
    assert m["nll"] == pytest.approx(skm.log_loss(y, probs, labels=range(k)))


def test_classification_metrics_hand_case():
    # 3 classes; true 0,0,1,1,2,2 predicted 0,1,1,1,0,2
    y = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 1, 1, 1, 0, 2])
    probs = np.eye(3)[pred] * 0.8 + 0.2 / 3
    m = evaluation.classification_metrics(y, probs, ["a", "b", "c"], n_boot=100)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["per_class"]["a"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert m["per_class"]["b"] == pytest.approx({"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2})
    assert m["per_class"]["c"] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2})
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert m["most_confused"] == [
        {"true": "a", "predicted": "b", "count": 1, "share_of_true": 0.5},
        {"true": "c", "predicted": "a", "count": 1, "share_of_true": 0.5},
    ]
    assert m["top_k"] == {1: pytest.approx(4 / 6), 3: 1.0}  # k=5 capped at 3 classes
    table = evaluation.per_class_table(m)
    assert list(table.index) == ["a", "b", "c", "macro avg", "weighted avg"]
    assert table.loc["macro avg", "f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert table.loc["weighted avg", "support"] == 6


def test_top_k_caps_k_at_the_number_of_classes_and_rejects_bad_input():
    _, probs = _random_probs(50, 2)
    y = np.arange(50) % 2
    assert list(evaluation.top_k_accuracy(y, probs)) == [1, 2]
    with pytest.raises(ValueError, match="one row per label"):
        evaluation.top_k_accuracy(y[:10], probs)
    with pytest.raises(ValueError, match="Labels must lie"):
        evaluation.top_k_accuracy(np.full(50, 2), probs)


def test_misclassified_picks_wrong_predictions_most_confident_first():
    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4], [0.2, 0.8], [0.55, 0.45]])
    y = np.array([1, 1, 1, 0, 0])  # wrong: 0 (conf .9), 2 (.6), 3 (.8)
    assert evaluation.misclassified(y, probs, 10, most_confident=True).tolist() == [0, 3, 2]
    assert evaluation.misclassified(y, probs, 2, most_confident=True).tolist() == [0, 3]
    sample = evaluation.misclassified(y, probs, 2, seed=0)
    assert set(sample) <= {0, 2, 3} and len(sample) == 2
    assert np.array_equal(sample, evaluation.misclassified(y, probs, 2, seed=0))
    assert evaluation.correctly_classified(y, probs, 5).tolist() == [1, 4]


# --------------------------------------------------------------------------- calibration


def test_ece_hand_case():
    # two images at confidence 0.9 (both right) and two at 0.6 (one right): gaps 0.1 and 0.1 -> ECE 0.1
    probs = np.array([[0.9, 0.1], [0.1, 0.9], [0.6, 0.4], [0.4, 0.6]])
    y = np.array([0, 1, 0, 0])
    assert evaluation.expected_calibration_error(probs, y, n_bins=15) == pytest.approx(0.1)
    bins = evaluation.reliability_bins(probs, y, n_bins=10)
    # 0.9 lies in (0.8, 0.9] -> bin 8; 0.6 in (0.5, 0.6] -> bin 5
    assert bins["count"].tolist() == [0, 0, 0, 0, 0, 2, 0, 0, 2, 0]
    assert bins["accuracy"][8] == 1.0 and bins["accuracy"][5] == 0.5
    assert bins["confidence"][8] == pytest.approx(0.9)


def test_ece_is_near_zero_for_a_calibrated_predictor_and_large_for_an_overconfident_one():
    logits, probs = _random_probs(20_000, 10, seed=7)
    y = _sample_labels(probs, seed=8)
    assert evaluation.expected_calibration_error(probs, y) < 0.015
    overconfident = inference.softmax(logits * 4)
    assert evaluation.expected_calibration_error(overconfident, y) > 0.2


def test_nll_matches_scikit_learn_log_loss():
    logits, probs = _random_probs(300, 4, seed=2)
    y = _sample_labels(probs)
    assert evaluation.nll(logits, y) == pytest.approx(skm.log_loss(y, probs, labels=range(4)))
    assert evaluation.nll(logits, y, 2.0) == pytest.approx(
        skm.log_loss(y, inference.softmax(logits, 2.0), labels=range(4))
    )


def test_temperature_scaling_recovers_the_overconfidence_and_improves_nll_and_ece():
    logits, probs = _random_probs(6000, 10, seed=11)
    y = _sample_labels(probs, seed=12)
    sharp = logits * 3.0  # the "model" is 3x overconfident
    val, test = slice(0, 3000), slice(3000, None)
    t = evaluation.fit_temperature(sharp[val], y[val])
    assert t == pytest.approx(3.0, rel=0.1)
    assert evaluation.nll(sharp[test], y[test], t) < evaluation.nll(sharp[test], y[test]) - 0.3
    ece_before = evaluation.expected_calibration_error(inference.softmax(sharp[test]), y[test])
    ece_after = evaluation.expected_calibration_error(inference.softmax(sharp[test], t), y[test])
    assert ece_after < ece_before / 3
    # scaling never changes the prediction
    assert np.array_equal(inference.softmax(sharp, t).argmax(1), sharp.argmax(1))
    with pytest.raises(ValueError, match="validation"):
        evaluation.fit_temperature(np.zeros((0, 3)), [])


# --------------------------------------------------------------------------- corruptions


def test_predict_probs_and_flip_tta():
    model = _brightness_model(8)  # flip-invariant: TTA must not change anything
    x = _images(5, 8)
    probs = inference.predict_probs(model, x)
    np.testing.assert_allclose(probs.sum(1), 1.0)
    np.testing.assert_allclose(inference.predict_probs(model, x, tta=True), probs, atol=1e-6)
    cam_model, _ = _cam_model("channels_last")
    plain = inference.predict_probs(cam_model, x)
    mirrored = inference.predict_probs(cam_model, x[:, :, ::-1])
    tta = inference.predict_probs(cam_model, x, tta=True)
    np.testing.assert_allclose(tta, (plain + mirrored) / 2, atol=1e-6)
    np.testing.assert_allclose(inference.predict_probs(cam_model, x, tta=True, base_probs=plain), tta, atol=1e-6)
    assert not np.allclose(tta, plain)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_grad_cam_equals_cam_in_closed_form(data_format):
    model, dense = _cam_model(data_format)
    x = _images(4, 8, seed=9)
    feats = keras.Model(model.inputs[0], model.get_layer("features").output)(x.astype("float32"))
    feats = np.asarray(feats.detach().cpu().numpy(), dtype=np.float64)
    if data_format == "channels_first":
        feats = feats.transpose(0, 2, 3, 1)
    kernel = np.asarray(dense.get_weights()[0], dtype=np.float64)  # (channels, classes)
    cls = np.array([0, 1, 2, 1])
    # d logit_c / d A_k(i, j) = W[k, c] / (H W); Grad-CAM weights are its spatial mean
    expected = np.maximum(np.einsum("nhwk,nk->nhw", feats, kernel[:, cls].T), 0)
    expected /= expected.reshape(4, -1).max(1)[:, None, None]
    maps = saliency.grad_cam(model, x, class_idx=cls)
    assert maps.shape == (4, 8, 8)
    np.testing.assert_allclose(maps, expected, atol=1e-4)
    assert saliency.last_conv_layer(model).name == "features"


@pytest.mark.parametrize(
    "name, layer", [("simple_cnn", "block3_relu2"), ("fastnet", "block3_gelu2"), ("resnet20", "stage3_block3_out")]
)
def test_grad_cam_runs_on_the_registered_models(name, layer):
    from cifarkit.models import build_model

    model = build_model(name, input_shape=(32, 32, 3), num_classes=4)
    x = _images(3, 32, seed=1)
    assert saliency.last_conv_layer(model).name == layer
    maps, method = saliency.saliency(model, x)
    assert method == f"Grad-CAM (layer {layer})"
    assert maps.shape == (3, 32, 32) and maps.dtype == np.float32
    assert np.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1 + 1e-6
    assert (maps.reshape(3, -1).max(1) > 0.99).all()  # scaled to a peak of 1 (an untrained net still has one)
    # explaining another class gives another map
    other = saliency.grad_cam(model, x, class_idx=(probs_argmax := inference.predict_probs(model, x).argmax(1)) ^ 1)
    assert other.shape == maps.shape and not np.allclose(other, maps)
    assert len(probs_argmax) == 3


def test_occlusion_finds_the_only_region_the_model_looks_at():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Cropping2D(((0, 8), (0, 8)), data_format="channels_last")(inputs)  # top-left quadrant only
    x = keras.layers.GlobalAveragePooling2D(data_format="channels_last")(x)
    dense = keras.layers.Dense(2)
    model = keras.Model(inputs, dense(x))
    dense.set_weights([np.stack([np.full(3, 0.002), np.full(3, -0.002)]).T.astype("float32"), np.zeros(2, "float32")])
    img = np.full((1, 16, 16, 3), 250, np.uint8)  # bright -> class 0; grey patches lower its probability
    maps, method = saliency.saliency(model, img)  # no convolution: falls back to occlusion
    assert method == "occlusion sensitivity"
    assert maps.shape == (1, 16, 16)
    assert maps[0, :8, :8].max() == pytest.approx(1.0)
    assert maps[0, 12:, 12:].max() == 0.0  # patches there never touch the quadrant


def test_predict_logits_keeps_a_batchs_activations_within_the_memory_it_allows(monkeypatch):
    """Keras' Functional models hold every layer's output until a pass ends: DenseNet-BC-100 took 27 GB at batch
    512 in float32 and was killed on a 24 GB machine. Big models predict in smaller batches, the same logits."""
    densenet = models.build_model("densenet_bc_100")
    per_image = models.common.activation_elements(densenet)
    batch = inference.inference_batch(densenet, (32, 32, 3))
    assert batch % 8 == 0 and batch * per_image * 4 <= inference.ACTIVATION_BYTES < 512 * per_image * 4
    assert (batch + 8) * per_image * 4 > inference.ACTIVATION_BYTES  # as many as fit
    for small in ("fastnet", "resnet20", "simple_cnn"):  # the models of the quick and standard studies: unchanged
        assert inference.inference_batch(models.build_model(small), (32, 32, 3)) == 512

    model, _ = _cam_model("channels_last", num_classes=3, size=8)
    x = _images(21, 8)
    whole = inference.predict_logits(model, x)
    per_image = models.common.activation_elements(model)
    monkeypatch.setattr(inference, "ACTIVATION_BYTES", 4 * per_image * 9)  # room for 9 images: batches of 8
    assert inference.inference_batch(model, (8, 8, 3)) == 8
    seen = []
    forward = model.call
    monkeypatch.setattr(model, "call", lambda x, *a, **k: seen.append(len(x)) or forward(x, *a, **k))
    np.testing.assert_allclose(inference.predict_logits(model, x), whole, rtol=1e-5, atol=1e-6)
    assert seen == [8, 8, 5]
    monkeypatch.setattr(inference, "ACTIVATION_BYTES", 4 * per_image * 5)  # room for 5: fewer than 8, as many
    assert inference.inference_batch(model, (8, 8, 3)) == 5

    class Subclassed(keras.Model):  # no graph to count (and none held): the batch asked for
        def call(self, x):
            return x

    assert inference.inference_batch(Subclassed(), (8, 8, 3), 64) == 64


# --------------------------------------------------------------------------- loading and finding models


def _save_model(path, num_classes=3, size=8):
    model, _ = _cam_model("channels_last", num_classes=num_classes, size=size)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return model


def test_load_trained_model_round_trip_and_clear_errors(tmp_path):
    path = tmp_path / "models" / "tiny" / "model.keras"
    original = _save_model(path, num_classes=3)
    loaded = run_folder.load_model(path, num_classes=3, input_shape=(8, 8, 3))
    x = _images(3, 8)
    np.testing.assert_allclose(inference.predict_logits(loaded, x), inference.predict_logits(original, x), atol=1e-5)

    missing = tmp_path / "nowhere" / "model.keras"
    with pytest.raises(FileNotFoundError) as err:
        run_folder.load_model(missing)
    assert str(missing) in str(err.value) and "03_train" in str(err.value)
    with pytest.raises(ValueError) as err:
        run_folder.load_model(path, num_classes=4)
    assert "3 classes" in str(err.value) and "4 classes" in str(err.value)
    with pytest.raises(ValueError, match=r"\(8, 8, 3\)"):
        run_folder.load_model(path, input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match="empty path"):
        run_folder.load_model("")


def test_find_run_models_reads_what_02_and_06_recorded(tmp_path):
    run = tmp_path / "run"
    (run / "metrics").mkdir(parents=True)
    _save_model(run / "models" / "simple_cnn" / "model.keras")
    _save_model(run / "models" / "resnet20" / "model.keras")
    # the run was written elsewhere and moved here: the absolute path is found again under this run
    old = tmp_path / "old-place" / "run" / "models" / "simple_cnn" / "model.keras"
    (run / "metrics" / "03_train.json").write_text(
        json.dumps({"model": "simple_cnn", "model_path": str(old), "epochs_run": 3})
    )
    (run / "metrics" / "06_architectures_and_ensembles.json").write_text(
        json.dumps(
            {
                "models": [
                    {
                        "name": "simple_cnn",
                        "model_path": str(run / "models" / "simple_cnn" / "model.keras"),
                        "epochs": 3,
                    },
                    {"name": "resnet20", "model_path": "models/resnet20/model.keras", "epochs": 2},
                    {"name": "vgg11", "model_path": str(run / "models" / "vgg11" / "model.keras")},
                ]
            }
        )
    )
    found = run_folder.find_run_models(run)
    source = "06_architectures_and_ensembles"
    assert [(f["name"], f["source"], f["exists"]) for f in found] == [
        ("simple_cnn", "03_train", True),
        ("resnet20", source, True),
        ("vgg11", source, False),
    ]
    assert found[1]["epochs_run"] == 2
    assert found[0]["model_path"] == str(run / "models" / "simple_cnn" / "model.keras")
    assert found[0]["epochs_run"] == 3
    assert run_folder.resolve_model_path(run) == run / "models" / "simple_cnn" / "model.keras"
    assert run_folder.resolve_model_path(run, str(run / "models" / "resnet20" / "model.keras")).name == "model.keras"

    empty = tmp_path / "empty-run"
    empty.mkdir()
    assert run_folder.find_run_models(empty) == []
    with pytest.raises(FileNotFoundError) as err:
        run_folder.resolve_model_path(empty)
    assert str(empty) in str(err.value) and "03_train" in str(err.value)
    with pytest.raises(FileNotFoundError, match="MODEL_PATH"):
        run_folder.resolve_model_path(empty, str(tmp_path / "no.keras"))


def test_training_info_and_data_mismatch(tmp_path):
    path = tmp_path / "m" / "model.keras"
    path.parent.mkdir()
    assert run_folder.training_info(path) == {}
    (path.parent / "metrics.json").write_text(json.dumps({"model": "fastnet", "epochs": 4, "dataset": {"seed": 0}}))
    info = run_folder.training_info(path)
    assert info["model"] == "fastnet" and info["epochs_run"] == 4
    assert evaluation.data_mismatch({"seed": 0, "subset": 20}, {"seed": 0, "subset": 20}) == []
    assert evaluation.data_mismatch({"seed": 0, "subset": 20}, {"seed": 1, "subset": 20}) == [
        "seed: 0 (training) vs 1 (now)"
    ]


# --------------------------------------------------------------------------- the notebook


@pytest.mark.notebook
@pytest.mark.slow
def test_evaluate_notebook_records_consistent_metrics(smoke_study):
    result = smoke_study  # the whole smoke study on synthetic:40 (tests/conftest.py)
    assert result.ok, [(nb.name, nb.error) for nb in result.notebooks]
    run_dir = result.run_dir
    m = json.loads((run_dir / "metrics" / "04_evaluate.json").read_text())
    train = json.loads((run_dir / "metrics" / "03_train.json").read_text())

    assert m["model"] == train["model"] == "simple_cnn" and m["model_path"] == train["model_path"]
    assert m["epochs_run"] == train["epochs_run"] == 1
    n = m["n_test"]
    assert n == train["data"]["counts"]["test"] > 0
    # the evaluation of the same weights on the same test split gives 03's accuracy
    assert m["test_acc"] == pytest.approx(train["test_acc"], abs=1e-9)
    lo, hi = m["test_acc_ci"]
    assert 0 <= lo <= m["test_acc"] <= hi <= 1
    names = train["data"]["class_names"]
    assert list(m["per_class"]) == names
    support = {c: v["support"] for c, v in m["per_class"].items()}
    assert sum(support.values()) == n
    weighted_recall = sum(v["recall"] * v["support"] for v in m["per_class"].values()) / n
    assert weighted_recall == pytest.approx(m["test_acc"])
    cm = np.array(m["confusion_matrix"])
    assert cm.shape == (len(names), len(names)) and cm.sum() == n
    assert np.trace(cm) / n == pytest.approx(m["test_acc"])
    assert cm.sum(axis=1).tolist() == list(support.values())
    assert m["top_k"]["1"] == pytest.approx(m["test_acc"])
    assert list(m["top_k"].values()) == sorted(m["top_k"].values()) and m["top_k"][str(len(names))] == 1.0
    for key in ("macro_f1", "weighted_f1", "balanced_acc", "ece_before", "ece_after"):
        assert 0 <= m[key] <= 1, key
    assert m["balanced_acc"] == pytest.approx(np.mean([v["recall"] for v in m["per_class"].values()]))
    assert sum(c["count"] for c in m["most_confused"]) <= n - np.trace(cm)
    assert m["n_misclassified"] == n - np.trace(cm)
    assert m["temperature"] > 0 and m["nll_after"] <= m["nll_before"] + 1e-9  # fitted on validation, so usually
    assert m["tta"] is True and 0 <= m["tta_acc"] <= 1
    assert m["tta_gain"] == pytest.approx(m["tta_acc"] - m["test_acc"])
    assert list(m["robustness"]) == list(corruptions.CORRUPTIONS_C)  # the CIFAR-10-C protocol: 15 x 5
    assert all(
        set(v) == {"1", "2", "3", "4", "5"} and all(0 <= a <= 1 for a in v.values()) for v in m["robustness"].values()
    )
    cells = [a for v in m["robustness"].values() for a in v.values()]
    assert m["robustness_mean_acc"] == pytest.approx(np.mean(cells))
    assert m["robustness_reference_points"]["robustbench_standard_wrn_28_10"]["mean_corruption_acc"] == 73.46
    assert m["robustness_n"] == n  # CORRUPTION_SAMPLES is 0 in the smoke profile: all test images
    assert m["robustness_clean_acc"] == pytest.approx(m["test_acc"])
    assert m["saliency_method"].startswith("Grad-CAM")
    html = (run_dir / "04_evaluate.html").read_text()
    assert (
        html.count("data:image/png;base64") >= 8
    )  # bars, confusion, 2 galleries, reliability, corruptions x2, saliency
    assert "Reliability" in html and "Grad-CAM" in html
