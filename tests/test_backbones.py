"""ImageNet backbones from keras.applications (BACKBONE): registry, weights, the two training phases, 03."""

import json

import numpy as np
import pytest

from cifarkit.data import load_dataset
from cifarkit.models import build_backbone, build_model, list_backbones, list_models, model_info
from cifarkit.models.backbones import backbone_of, imagenet_file_name, keras_cache_dir
from cifarkit.report import runner
from cifarkit.training import resolve_recipe, train
from cifarkit.training.transfer import backbone_settings


def test_backbones_are_registered_apart_from_the_cifar_models():
    backbones = list_backbones()
    assert {"mobilenet_v2", "efficientnet_b0", "resnet50"} <= set(backbones)
    assert not set(backbones) & set(list_models())  # "every model" loops stay with the CIFAR networks
    assert set(backbones) <= set(list_models(include_backbones=True))
    info = model_info("mobilenet_v2")
    assert info["kind"] == "backbone" and "MobileNetV2" in info["notes"]
    assert model_info("fastnet")["kind"] == "cifar"


def test_a_backbone_from_scratch_takes_raw_pixels_and_says_how_it_was_built():
    built = build_backbone("mobilenet_v2", input_shape=(32, 32, 3), num_classes=5, weights="none")
    x = np.random.default_rng(0).integers(0, 256, size=(2, 32, 32, 3)).astype("uint8")
    out = np.asarray(built.model.predict(x, verbose=0))
    assert out.shape == (2, 5) and np.isfinite(out).all()
    assert built.info["weights"] == "none" and built.info["bn_inference"] is False
    assert built.info["application"] == "keras.applications.MobileNetV2"
    assert backbone_of(built.model) is not None
    # build_model reaches the same builder through the registry
    assert build_model("mobilenet_v2", input_shape=(32, 32, 3), num_classes=5).output_shape == (None, 5)


def test_bad_backbone_requests_are_refused_with_what_to_do(tmp_path):
    with pytest.raises(ValueError, match="IMAGE_SIZE"):
        build_backbone("mobilenet_v2", input_shape=(16, 16, 3), num_classes=3)
    with pytest.raises(FileNotFoundError, match="not found"):
        build_backbone("mobilenet_v2", input_shape=(32, 32, 3), weights=str(tmp_path / "missing.weights.h5"))
    bad = tmp_path / "weights.txt"
    bad.write_text("x")
    with pytest.raises(ValueError, match=r"\.h5"):
        build_backbone("mobilenet_v2", input_shape=(32, 32, 3), weights=str(bad))
    with pytest.raises(ValueError, match="Supported backbones"):
        backbone_settings("fastnet", "resnet9000", "none", 1)
    assert backbone_settings("fastnet", "none", "imagenet", 3) == ("fastnet", {})
    assert backbone_settings("fastnet", "mobilenet_v2", "", 2) == (
        "mobilenet_v2",
        {"backbone_weights": "none", "freeze_epochs": 2},
    )


def test_imagenet_weights_without_network_fall_back_to_scratch_and_say_so(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # an empty cache: Keras must download
    assert not (keras_cache_dir() / imagenet_file_name("mobilenet_v2", 32)).exists()
    with pytest.warns(UserWarning, match="could not be downloaded"):
        built = build_backbone("mobilenet_v2", input_shape=(32, 32, 3), num_classes=3, weights="imagenet")
    if built.info["weights"] == "imagenet":  # a machine with network access got the real file
        assert built.info["weights_sha256"]
    else:
        assert built.info["weights"] == "none" and "trained from scratch" in built.info["note"]


@pytest.fixture(scope="module")
def small_images():
    return load_dataset("synthetic:10", image_size=32, progress=False)  # 4 classes, 8 training images each


def _saved_backbone(ds, path):
    built = build_backbone("mobilenet_v2", input_shape=ds.input_shape, num_classes=ds.num_classes)
    built.model(ds.x_train[:16], training=True)  # batch-norm statistics of these images, as real weights have
    backbone_of(built.model).save_weights(path)
    return [np.array(w) for w in backbone_of(built.model).get_weights()]


def test_the_frozen_phase_trains_only_the_head_and_the_fine_tune_phase_everything(small_images, tmp_path):
    ds = small_images
    weights_file = tmp_path / "mobilenet_v2.weights.h5"
    saved = _saved_backbone(ds, weights_file)
    cfg = resolve_recipe(
        "default",
        model="mobilenet_v2",
        epochs=1,
        batch_size=8,
        freeze_epochs=1,
        backbone_weights=str(weights_file),
        device="cpu",
        mixed_precision="off",
    )
    result = train(ds, cfg, tmp_path / "frozen", resume=False, progress=False)
    record = result.metrics["backbone"]
    assert record["weights"] == "file" and record["pretrained"] and record["bn_inference"]
    assert record["frozen_epochs"] == 1 and record["unfrozen_epochs"] == 0
    assert record["trainable_params"]["frozen"] < record["trainable_params"]["fine-tune"]
    after = backbone_of(result.model).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(saved, after))  # not one backbone value moved
    head = result.model.get_layer("head_dense").get_weights()[0]
    assert np.abs(head).sum() > 0

    cfg2 = resolve_recipe(
        "default",
        model="mobilenet_v2",
        epochs=2,
        batch_size=8,
        freeze_epochs=1,
        backbone_weights=str(weights_file),
        device="cpu",
        mixed_precision="off",
    )
    result2 = train(ds, cfg2, tmp_path / "finetune", resume=False, progress=False)
    assert [h["phase"] for h in result2.history] == ["frozen", "fine-tune"]
    after2 = backbone_of(result2.model).get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(saved, after2))  # fine-tuning moved the backbone
    assert "0.1 x the scheduled learning rate" in result2.metrics["backbone"]["phases"]


@pytest.mark.slow
@pytest.mark.notebook
def test_train_and_cross_validation_notebooks_fine_tune_a_backbone_and_report_it(tmp_path, small_images):
    weights_file = tmp_path / "mobilenet_v2.weights.h5"
    _saved_backbone(small_images, weights_file)
    result = runner.run_study(
        "smoke",
        data="synthetic:10",
        out=tmp_path / "runs",
        only=["03", "07"],
        overrides={
            "BACKBONE": "mobilenet_v2",
            "BACKBONE_WEIGHTS": str(weights_file),
            "FREEZE_EPOCHS": 1,
            "EPOCHS": 2,
            "CV_FOLDS": 2,
        },
        pdf=False,
        log=lambda *a: None,
    )
    assert result.ok, [(nb.name, nb.error) for nb in result.notebooks]
    metrics = json.loads((result.run_dir / "metrics" / "03_train.json").read_text())
    assert metrics["model"] == "mobilenet_v2" and metrics["epochs_run"] == 2
    assert metrics["backbone"]["weights"] == "file" and metrics["backbone"]["frozen_epochs"] == 1
    assert (result.run_dir / "models" / "mobilenet_v2" / "model.keras").is_file()
    html = (result.run_dir / "03_train.html").read_text()
    assert "keras.applications.MobileNetV2" in html and "train only the new head" in html
    cv = json.loads((result.run_dir / "metrics" / "07_cross_validation.json").read_text())
    assert cv["model"] == "mobilenet_v2" and cv["config"]["backbone_weights"] == str(weights_file)
