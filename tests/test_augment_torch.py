"""Tests of the device input pipeline (``cifarkit.training.augment_torch``) and the CUDA defaults, on CPU tensors.

The augmentations are checked against the numpy pipeline exactly where the
random draws can be shared (crops, cutout), and in distribution where they
cannot (crop offsets, flips). Training runs use a narrow ``simple_cnn`` on the
synthetic shapes, as ``tests/test_train.py`` does.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import assert_resumes_to_the_same_numbers

from cifarkit import backend  # noqa: F401  (configures the Keras backend first)
from cifarkit.data import load_dataset
from cifarkit.training import resolve_recipe, train
from cifarkit.training.augment import Augment, TrainPipeline, cutout, random_crop
from cifarkit.training.augment_torch import (
    DevicePipeline,
    apply_cutout,
    choose_pipeline,
    cutout_mask,
    gather_crop_flip,
)

torch = pytest.importorskip("torch")

SMALL_CNN = {"widths": [16, 32, 64], "dense_units": 64}
TIMING_KEYS = ("epoch_seconds", "images_per_sec", "eval_seconds", "train_seconds_cumulative")


def _images(n=64, h=8, w=8, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, h, w, 3), dtype=np.uint8)


def _t(a):
    return torch.from_numpy(np.asarray(a))


# --------------------------------------------------------------------------- crop, flip, cutout


@pytest.mark.parametrize("pad_mode", ["reflect", "zero"])
def test_crop_is_a_shift_of_the_padded_image_for_every_offset(pad_mode):
    pad = 2
    offsets = [(dy, dx) for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)]
    x = _images(len(offsets))
    dy, dx = (_t([o[k] for o in offsets]) for k in (0, 1))
    out = gather_crop_flip(_t(x), None, pad, dy, dx, None, pad_mode).numpy()
    padded = np.pad(
        x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect" if pad_mode == "reflect" else "constant"
    )
    assert out.shape == x.shape and out.dtype == np.uint8
    for i, (a, b) in enumerate(offsets):
        np.testing.assert_array_equal(out[i], padded[i, a : a + 8, b : b + 8])
    # the centre offset is the identity
    assert np.array_equal(out[offsets.index((pad, pad))], x[offsets.index((pad, pad))])


@pytest.mark.parametrize("pad_mode", ["reflect", "zero"])
def test_crop_equals_the_numpy_pipeline_given_the_same_offsets(pad_mode):
    x = _images(300)
    expected = random_crop(x, 3, np.random.default_rng(11), pad_mode)
    rng = np.random.default_rng(11)  # random_crop draws the rows, then the columns
    dy, dx = rng.integers(0, 7, size=300), rng.integers(0, 7, size=300)
    out = gather_crop_flip(_t(x), None, 3, _t(dy), _t(dx), None, pad_mode)
    np.testing.assert_array_equal(out.numpy(), expected)


def test_reflect_and_zero_padding_values_at_the_border():
    x = np.full((1, 8, 8, 3), 200, dtype=np.uint8)
    x[0, 0, :, :] = 10  # a distinct first row: reflect padding mirrors row 1, never repeats row 0
    x[0, 1, :, :] = 50
    down = (_t([0]), _t([2]))  # dy=0: the image moves down by 2 rows (the padding appears at the top)
    reflect = gather_crop_flip(_t(x), None, 2, *down, None, "reflect").numpy()[0]
    zero = gather_crop_flip(_t(x), None, 2, *down, None, "zero").numpy()[0]
    assert (reflect[0] == 200).all() and (reflect[1] == 50).all() and (reflect[2] == 10).all()  # rows 2, 1, 0
    assert (zero[:2] == 0).all() and (zero[2] == 10).all() and (zero[3] == 50).all()
    assert (zero[2:] > 0).all()  # nothing but the two padded rows is black
    left = (_t([2]), _t([4]))  # dx=4: the image moves left by 2 columns (the padding appears at the right)
    zero = gather_crop_flip(_t(np.full((1, 8, 8, 3), 9, np.uint8)), None, 2, *left, None, "zero").numpy()[0]
    assert (zero[:, 6:] == 0).all() and (zero[:, :6] == 9).all()


def test_flip_mirrors_and_combines_with_the_crop():
    x = _images(6)
    flip = _t([True, False, True, False, True, False])
    out = gather_crop_flip(_t(x), None, 0, None, None, flip).numpy()
    for i in range(6):
        np.testing.assert_array_equal(out[i], x[i, :, ::-1] if flip[i] else x[i])
    dy, dx = _t([0, 1, 2, 3, 4, 0]), _t([4, 3, 2, 1, 0, 1])
    cropped = gather_crop_flip(_t(x), None, 2, dy, dx, None).numpy()
    both = gather_crop_flip(_t(x), None, 2, dy, dx, flip).numpy()
    for i in range(6):
        np.testing.assert_array_equal(both[i], cropped[i, :, ::-1] if flip[i] else cropped[i])


def test_gather_selects_the_images_at_idx():
    x = _images(10)
    idx = _t([7, 2, 2, 9])
    np.testing.assert_array_equal(gather_crop_flip(_t(x), idx, 0, None, None, None).numpy(), x[[7, 2, 2, 9]])


def test_cutout_sets_exactly_a_square_of_the_given_side_or_its_clipped_part():
    x = np.full((4, 16, 16, 3), 128, dtype=np.uint8)
    cy, cx = _t([8, 0, 15, 5]), _t([8, 0, 15, 11])
    out = apply_cutout(_t(x), 6, cy, cx, fill=(10.4, 20.6, 300.0)).numpy()
    filled = (out != 128).all(axis=-1)
    assert ((out != 128).any(axis=-1) == filled).all()  # a pixel is filled in all channels or in none
    np.testing.assert_array_equal(out[filled], np.tile([10, 21, 255], (filled.sum(), 1)))  # rounded and clipped
    for i, (y0, x0) in enumerate([(5, 5), (-3, -3), (12, 12), (2, 8)]):
        expected = np.zeros((16, 16), bool)
        expected[max(y0, 0) : y0 + 6, max(x0, 0) : x0 + 6] = True
        np.testing.assert_array_equal(filled[i], expected)
    assert filled[0].sum() == 36 and filled[3].sum() == 36  # inside: exactly side x side
    assert filled[1].sum() == 9 and filled[2].sum() == 16  # clipped by the border (side 6, centre at a corner)


def test_cutout_equals_the_numpy_pipeline_given_the_same_centres():
    x = _images(200, 12, 12)
    fill = (123.4, 0.0, 99.6)
    expected = cutout(x.copy(), 5, np.random.default_rng(3), fill=fill)
    rng = np.random.default_rng(3)
    cy, cx = rng.integers(0, 12, size=200), rng.integers(0, 12, size=200)
    np.testing.assert_array_equal(apply_cutout(_t(x), 5, _t(cy), _t(cx), fill).numpy(), expected)
    assert cutout_mask(12, 12, 5, _t(cy), _t(cx)).shape == (200, 12, 12)


# --------------------------------------------------------------------------- the pipeline


def _epochs(pipe, n, start=0):
    return [[(xb.clone(), yb.clone()) for xb, yb in pipe.epoch(e)] for e in range(start, start + n)]


def _equal(a, b):
    return len(a) == len(b) and all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b))


OPTS = dict(num_classes=4, crop=2, flip=True, cutout=3, cutout_fill=(10, 20, 30))


def test_same_seed_same_batches_another_seed_other_batches():
    x, y = _images(64), np.arange(64) % 4
    a = _epochs(DevicePipeline(x, y, 16, seed=7, **OPTS), 2)
    b = _epochs(DevicePipeline(x, y, 16, seed=7, **OPTS), 2)
    c = _epochs(DevicePipeline(x, y, 16, seed=8, **OPTS), 1)
    assert all(_equal(ea, eb) for ea, eb in zip(a, b))
    assert not _equal(a[0], c[0]) and not _equal(a[0], a[1])
    xb, yb = a[0][0]
    assert xb.dtype == torch.uint8 and xb.shape == (16, 8, 8, 3) and yb.dtype == torch.int64


def test_every_image_once_per_epoch_and_drop_last_as_numpy():
    x = _images(50)
    y = np.arange(50)  # the label is the image's index
    pipe = DevicePipeline(x, y, 16, num_classes=50, drop_last=False, seed=0)
    assert len(pipe) == len(TrainPipeline(x, y, 16, num_classes=50, drop_last=False)) == 4
    for e in range(2):
        batches = list(pipe.epoch(e))
        labels = torch.cat([yb for _, yb in batches]).numpy()
        assert sorted(labels) == list(range(50))
        for xb, yb in batches:  # no augmentation: the images follow their labels exactly
            np.testing.assert_array_equal(xb.numpy(), x[yb.numpy()])
    dropped = DevicePipeline(x, y, 16, num_classes=50, seed=0, crop=2, flip=True)
    assert len(dropped) == len(TrainPipeline(x, y, 16, num_classes=50)) == 3
    labels = [yb for _, yb in dropped.epoch()]
    assert all(len(yb) == 16 for yb in labels) and len(set(torch.cat(labels).tolist())) == 48
    assert dropped.images_per_epoch == 48
    tiny = DevicePipeline(x[:5], y[:5], 16, num_classes=50)
    assert len(tiny) == 1 and len(next(iter(tiny))[0]) == 5  # a set smaller than a batch still trains


def test_augmented_images_keep_their_labels():
    # flips only: each output is its image or its mirror, and the label says which image
    x, y = _images(48, seed=4), np.arange(48)
    pipe = DevicePipeline(x, y, 8, num_classes=48, flip=True, seed=1)
    flipped = 0
    for xb, yb in pipe.epoch():
        for img, i in zip(xb.numpy(), yb.numpy()):
            assert np.array_equal(img, x[i]) or np.array_equal(img, x[i, :, ::-1])
            flipped += not np.array_equal(img, x[i])
    assert 8 < flipped < 40


def _flip_decisions(pipe, x, epochs):
    index = {bytes(img): i for i, img in enumerate(x.reshape(len(x), -1))}
    mirrored = {bytes(img[:, ::-1]): i for i, img in enumerate(x)}
    rows = []
    for e in epochs:
        flips = np.full(len(x), -1)
        for xb, _ in pipe.epoch(e):
            for img in np.asarray(xb):
                key = bytes(img)
                i = index.get(key, mirrored.get(key))
                assert i is not None
                flips[i] = key in mirrored
        assert (flips >= 0).all()  # every image once per epoch
        rows.append(flips.astype(bool))
    return rows


def test_alternating_flips_reverse_every_other_epoch_as_the_numpy_pipeline():
    x, y = _images(48, seed=4), np.arange(48) % 4
    pipe = DevicePipeline(x, y, 16, num_classes=4, flip=True, alternate_flip=True, seed=5)
    e0, e1, e2, e3 = _flip_decisions(pipe, x, range(4))
    assert 12 < e0.sum() < 36
    assert np.array_equal(e1, ~e0) and np.array_equal(e2, e0) and np.array_equal(e3, ~e0)
    numpy_pipe = TrainPipeline(x, y, 16, num_classes=4, flip=True, alternate_flip=True, seed=5)
    assert np.array_equal(_flip_decisions(numpy_pipe, x, [0])[0], e0)  # the same images, the same epochs
    other = DevicePipeline(x, y, 16, num_classes=4, flip=True, alternate_flip=True, seed=6)
    assert not np.array_equal(_flip_decisions(other, x, [0])[0], e0)


def test_state_dict_round_trip_resumes_the_same_batches():
    x, y = _images(64), np.arange(64) % 4
    a = _epochs(DevicePipeline(x, y, 16, seed=7, alternate_flip=True, **OPTS), 3)
    first = DevicePipeline(x, y, 16, seed=7, alternate_flip=True, **OPTS)
    _epochs(first, 1)
    buf = io.BytesIO()
    torch.save(first.state_dict(), buf)  # as a checkpoint stores it, and loads it with weights_only
    state = torch.load(io.BytesIO(buf.getvalue()), weights_only=True)
    # the same seed (a resumed run rebuilds its pipeline from the config): without the state it would draw epoch 0
    resumed = DevicePipeline(x, y, 16, seed=7, alternate_flip=True, **OPTS)
    resumed.load_state_dict(state)
    rest = _epochs(resumed, 2, start=1)
    assert _equal(rest[0], a[1]) and _equal(rest[1], a[2])


def test_foreign_states_are_refused_with_the_way_out():
    x, y = _images(16), np.arange(16) % 4
    pipe = DevicePipeline(x, y, 8, num_classes=4)
    with pytest.raises(ValueError, match="numpy input pipeline \\(PCG64\\).*pipeline='numpy'"):
        pipe.load_state_dict(TrainPipeline(x, y, 8, num_classes=4).state_dict())
    cuda_state = dict(pipe.state_dict(), device_type="cuda")
    with pytest.raises(ValueError, match="written on a 'cuda' device.*same kind of device"):
        pipe.load_state_dict(cuda_state)


def test_invalid_inputs_and_mixing_are_refused():
    with pytest.raises(ValueError, match="uint8"):
        DevicePipeline(np.zeros((4, 8, 8, 3), np.float32), np.zeros(4), 2, num_classes=2)
    with pytest.raises(ValueError, match="batch_size"):
        DevicePipeline(_images(4), np.zeros(4), 0, num_classes=2)
    with pytest.raises(ValueError, match="reflect padding needs pad < image size"):
        DevicePipeline(_images(4), np.zeros(4), 2, num_classes=2, crop=8)
    for mixing in (dict(mixup=0.2), dict(cutmix=1.0)):
        with pytest.raises(ValueError, match="mixup and cutmix are implemented only in the numpy"):
            DevicePipeline(_images(4), np.zeros(4), 2, num_classes=2, **mixing)


def test_choose_pipeline():
    assert choose_pipeline("auto", "cpu") == "numpy" and choose_pipeline("auto", "cuda") == "torch"
    assert choose_pipeline("auto", "cuda:1", Augment(mixup=0.2)) == "numpy"  # only numpy mixes
    assert choose_pipeline("torch", "cpu") == "torch" and choose_pipeline("numpy", "cuda") == "numpy"
    with pytest.raises(ValueError, match="mixup and cutmix"):
        choose_pipeline("torch", "cuda", Augment(cutmix=1.0))
    with pytest.raises(ValueError, match="pipeline must be one of"):
        choose_pipeline("gpu", "cuda")
    with pytest.raises(ValueError, match="pipeline='torch' does not implement mixup"):
        resolve_recipe("default", pipeline="torch", mixup=0.2)
    with pytest.raises(ValueError, match="pipeline must be one of"):
        resolve_recipe("default", pipeline="dali")
    with pytest.raises(ValueError, match="channels_last must be one of"):
        resolve_recipe("default", channels_last="yes")


# --------------------------------------------------------------------------- same distribution as numpy


def _crop_offsets(out, x, pad):
    """The (dy, dx) of each output image, found by matching against every shift of its zero-padded input."""
    n, h, w = x.shape[:3]
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    k = 2 * pad + 1
    found = np.full((n, 2), -1)
    for dy in range(k):
        for dx in range(k):
            hit = (out == padded[:, dy : dy + h, dx : dx + w]).all(axis=(1, 2, 3))
            found[hit & (found[:, 0] < 0)] = (dy, dx)
    assert (found >= 0).all()
    return found


def test_crop_offsets_and_flips_follow_the_numpy_distribution():
    n, pad = 3000, 2
    x = _images(n, seed=9)
    y = np.arange(n)
    k = 2 * pad + 1
    hist = {}
    for name, cls in (("torch", DevicePipeline), ("numpy", TrainPipeline)):
        pipe = cls(x, y, 500, num_classes=n, crop=pad, pad_mode="zero", seed=2)
        out, labels = [], []
        for xb, yb in pipe.epoch():
            out.append(np.asarray(xb))
            labels.append(np.asarray(yb))
        order = np.concatenate(labels)
        offsets = _crop_offsets(np.concatenate(out), x[order], pad)
        hist[name] = np.bincount(offsets[:, 0] * k + offsets[:, 1], minlength=k * k)
    expected = n / (k * k)
    for name, counts in hist.items():  # uniform over the 25 offsets: chi-square, 24 dof, p ~ 1e-4 at 55
        chi2 = ((counts - expected) ** 2 / expected).sum()
        assert chi2 < 55, (name, counts)
    assert abs(hist["torch"][: k * pad].sum() / n - hist["numpy"][: k * pad].sum() / n) < 0.05
    flips = DevicePipeline(x, y, 500, num_classes=n, flip=True, seed=3)
    mirrored = sum(int((xb.numpy() != x[yb.numpy()]).any(axis=(1, 2, 3)).sum()) for xb, yb in flips.epoch())
    assert abs(mirrored / n - 0.5) < 0.04


def test_cutout_area_follows_the_numpy_distribution():
    n = 4000
    x = np.full((n, 16, 16, 3), 255, dtype=np.uint8)
    y = np.arange(n) % 4
    areas = {}
    for name, cls in (("torch", DevicePipeline), ("numpy", TrainPipeline)):
        pipe = cls(x, y, 1000, num_classes=4, cutout=8, seed=4)
        areas[name] = np.concatenate([(np.asarray(xb) != 255).all(-1).sum(axis=(1, 2)) for xb, _ in pipe.epoch()])
    # centre uniform over the image: each clipped side averages 7 pixels (112 / 16), so the mean area is 49
    for a in areas.values():
        assert a.max() == 64 and a.min() >= 16 and abs(a.mean() - 49) < 1.5
    assert abs(areas["torch"].mean() - areas["numpy"].mean()) < 1.5


# --------------------------------------------------------------------------- training with it (CPU)


def small_config(**overrides):
    settings = dict(model="simple_cnn", model_options=SMALL_CNN, epochs=3, batch_size=32, lr=0.05)
    settings.update(overrides)
    return resolve_recipe("default", **settings)


@pytest.fixture(scope="module")
def dataset():
    return load_dataset("synthetic:100", progress=False)


def test_training_with_the_torch_pipeline_learns_the_synthetic_set(dataset, tmp_path):
    result = train(dataset, small_config(pipeline="torch", cutout=8), tmp_path, progress=False)
    m = result.metrics
    assert m["test_acc"] >= 0.9 and m["val_acc"] >= 0.9, result.history
    assert m["input_pipeline"] == "torch" and m["config"]["pipeline"] == "torch"
    assert m["device"] == "cpu" and m["channels_last"] is (m["mixed_precision"] == "bfloat16")  # "auto" on a CPU


def test_cpu_defaults_keep_the_numpy_pipeline_and_layout(dataset, tmp_path):
    result = train(dataset, small_config(epochs=1, mixed_precision="off"), tmp_path, progress=False)
    assert result.metrics["input_pipeline"] == "numpy" and result.metrics["channels_last"] is False
    assert result.metrics["compiled"] is False


def test_cpu_bf16_runs_relay_the_kernels_channels_last_by_default(dataset, tmp_path):
    result = train(dataset, small_config(epochs=1, mixed_precision="bf16"), tmp_path, progress=False)
    assert result.metrics["channels_last"] is True and result.metrics["mixed_precision"] == "bfloat16"
    assert result.metrics["device"] == "cpu"


@pytest.mark.parametrize(
    "setting, device, amp, expected",
    [
        ("auto", "cpu", None, False),
        ("auto", "cpu", "bf16", True),
        ("auto", "cuda", None, True),
        ("off", "cpu", "bf16", False),
        ("off", "cuda", "bf16", False),
        ("on", "cpu", None, True),
    ],
)
def test_channels_last_auto_means_cuda_or_cpu_under_bf16(setting, device, amp, expected):
    from cifarkit.training.precision import use_channels_last

    config = small_config(channels_last=setting)
    assert use_channels_last(config, device, torch.bfloat16 if amp else None) is expected


def test_torch_pipeline_run_resumes_to_the_same_numbers(dataset, tmp_path):
    config = small_config(pipeline="torch", deterministic=True, epochs=3, lookahead_every=3)
    assert_resumes_to_the_same_numbers(dataset, config, tmp_path, TIMING_KEYS)


def test_checkpoint_of_the_other_pipeline_is_refused_unless_the_run_is_finished(dataset, tmp_path):
    from cifarkit.training import checkpoint as ckpt

    done = train(dataset, small_config(epochs=1), tmp_path, progress=False)  # numpy pipeline, on this CPU
    path = tmp_path / "checkpoint.pt"
    state = ckpt.load_checkpoint(path)
    # as if a GPU run (device pipeline, CUDA generator) had written it
    gpu_state = dict(
        DevicePipeline(dataset.x_train, dataset.y_train, 32, num_classes=4).state_dict(), device_type="cuda"
    )
    ckpt.save_torch(dict(state, pipeline=gpu_state), path)
    again = train(dataset, small_config(epochs=1), tmp_path, progress=False)  # finished: reopens anywhere
    assert again.metrics == done.metrics
    ckpt.save_torch(dict(state, pipeline=gpu_state, epoch=0), path)  # unfinished: cannot continue here
    with pytest.raises(ValueError, match=r"written by the torch input pipeline \(cuda\).*numpy pipeline \(host\)"):
        train(dataset, small_config(epochs=1), tmp_path, progress=False)


# --------------------------------------------------------------------------- channels-last and compile defaults


def _tiny_model():
    from cifarkit.models import build_model

    return build_model("simple_cnn", input_shape=(16, 16, 3), num_classes=3, widths=[4, 8], dense_units=8)


def test_channels_last_kernels_keep_values_and_layout():
    from cifarkit.training.precision import is_channels_last_kernel, to_channels_last

    keras = backend.keras()
    model = _tiny_model()
    x = _t(_images(4, 16, 16))
    before = model(x, training=False).detach().numpy()
    convs = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.Conv2D)]
    params = [c.kernel.value for c in convs]
    values = [c.kernel.numpy().copy() for c in convs]
    assert not any(is_channels_last_kernel(c.kernel) for c in convs)
    assert to_channels_last(model) == len(convs) > 0
    assert all(is_channels_last_kernel(c.kernel) for c in convs)
    assert all(c.kernel.value is p for c, p in zip(convs, params))  # the same Parameter: optimizers see no change
    for c, v in zip(convs, values):
        np.testing.assert_array_equal(c.kernel.numpy(), v)
    np.testing.assert_allclose(model(x, training=False).detach().numpy(), before, rtol=1e-5, atol=1e-5)
    convs[0].kernel.assign(values[0] * 2)  # assign (checkpoint restore, whitening) keeps the layout
    assert is_channels_last_kernel(convs[0].kernel)
    model(x, training=True).float().sum().backward()
    assert convs[0].kernel.value.grad.stride() == convs[0].kernel.value.stride()


def test_channels_last_on_cpu_trains_and_saves(dataset, tmp_path):
    import keras

    import cifarkit.models  # noqa: F401  (registers custom layers)
    from cifarkit.training import predict_logits

    result = train(dataset, small_config(epochs=1, channels_last="on"), tmp_path, progress=False)
    assert result.metrics["channels_last"] is True and np.isfinite(result.history[0]["train_loss_aug"])
    loaded = keras.saving.load_model(result.out_dir / "model.keras")
    np.testing.assert_allclose(
        predict_logits(loaded, dataset.x_test), predict_logits(result.model, dataset.x_test), rtol=1e-5, atol=1e-5
    )


def _keras_pad_layer():
    """A layer that zero-pads channels with ``keras.ops.pad``, which builds a new named Keras op per call (a global
    name counter, a dict, changes): what resnet's zero-pad shortcut did before it called torch's own pad."""
    keras = backend.keras()

    class KerasOpsPad(keras.layers.Layer):
        def call(self, x):
            return keras.ops.pad(x, [[0, 0], [2, 2], [0, 0], [0, 0]])

        def compute_output_shape(self, shape):
            return (shape[0], shape[1] + 4, *shape[2:])

    return KerasOpsPad()


def _model_with_a_dict_mutation(shortcut=None):
    """Conv, a channel pad (``keras.ops.pad``: a global dict changes; or ``shortcut``), batch norm."""
    from cifarkit.models.layers import FusedBatchNorm, Preprocess

    keras = backend.keras()
    inputs = keras.Input((16, 16, 3))
    x = Preprocess(data_format="channels_first")(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", data_format="channels_first")(x)
    x = (shortcut or _keras_pad_layer())(x)
    x = FusedBatchNorm(axis=1)(x)
    x = keras.layers.GlobalAveragePooling2D(data_format="channels_first")(x)
    return keras.Model(inputs, keras.layers.Dense(3)(x))


def test_resnets_zero_pad_shortcut_compiles_once_where_keras_ops_pad_recompiled_every_call():
    from torch._dynamo.utils import counters

    from cifarkit.models.resnet import ZeroPadShortcut
    from cifarkit.training.precision import dynamo_friendly_signatures

    x = _t(_images(2, 16, 16))

    def graphs_after_three_calls(model):
        dynamo_friendly_signatures(model)
        torch._dynamo.reset()
        counters.clear()
        compiled = torch.compile(model, backend="eager")
        for _ in range(3):
            compiled(x, training=True)
        return counters["stats"]["unique_graphs"], sum(counters["graph_break"].values())

    # keras.ops.pad's fresh op name is a guard that fails at the next call: a new graph per call
    assert graphs_after_three_calls(_model_with_a_dict_mutation())[0] >= 3
    shortcut = ZeroPadShortcut(8, strides=2, data_format="channels_first")
    assert graphs_after_three_calls(_model_with_a_dict_mutation(shortcut)) == (1, 0)


def test_dynamo_traces_keras_layer_calls_without_graph_breaks():
    from torch._dynamo.utils import counters

    from cifarkit.training.precision import dynamo_friendly_signatures

    x = _t(_images(2, 16, 16))

    def breaks(model):
        torch._dynamo.reset()
        counters.clear()
        torch.compile(model, backend="eager")(x, training=True)
        return sum(counters["graph_break"].values())

    # After a dict mutation in traced code, reading a layer's call signature (a mappingproxy) breaks the graph.
    assert breaks(_model_with_a_dict_mutation()) > 0
    model = _model_with_a_dict_mutation()
    expected = model(x, training=False).detach().numpy()
    assert dynamo_friendly_signatures(model) > 0
    np.testing.assert_array_equal(model(x, training=False).detach().numpy(), expected)  # eager: unchanged
    assert breaks(model) == 0
    torch._dynamo.reset()
    assert dynamo_friendly_signatures(model) == 0  # idempotent


@pytest.mark.parametrize("name", ["fastnet", "resnet20"])
def test_the_models_compile_as_one_graph_without_breaks(name):
    """Traced by Dynamo (its eager backend: no code generated), fastnet and the ResNets are one graph that later calls
    reuse: Keras' ``GlobalMaxPooling2D`` (``ops.max``'s ``isinstance`` test) and ``Rescaling`` (a backend looked up
    with ``importlib`` per call) each broke fastnet's, and ``keras.ops.pad`` recompiled the ResNets' every call."""
    from torch._dynamo.utils import counters

    from cifarkit.models import build_model
    from cifarkit.training.precision import dynamo_friendly_signatures

    kwargs = {"block_widths": (8, 8, 8)} if name == "fastnet" else {"width_multiplier": 0.5}
    model = build_model(name, input_shape=(32, 32, 3), num_classes=3, **kwargs)
    dynamo_friendly_signatures(model)
    x = _t(_images(2, 32, 32))
    torch._dynamo.reset()
    counters.clear()
    compiled = torch.compile(model, backend="eager")
    for _ in range(2):
        out = compiled(x, training=True)
    assert counters["stats"]["unique_graphs"] == 1 and not sum(counters["graph_break"].values())
    np.testing.assert_allclose(out.detach().numpy(), model(x, training=True).detach().numpy(), rtol=1e-4, atol=1e-5)
