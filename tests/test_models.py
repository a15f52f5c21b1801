"""Tests for the model zoo: every registered model builds, predicts, trains one step and round-trips.

Each (model, input size) pair is built once per module (a module-scoped
parametrized fixture, so pytest groups the tests that use it and keeps only one
model alive at a time).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from cifarkit import backend, models
from cifarkit.models import common
from cifarkit.models.layers import BiasConv2D, FusedBatchNorm, GlobalMaxPool, Rescale
from cifarkit.models.resnet import ZeroPadShortcut

keras = backend.keras()
torch = pytest.importorskip("torch") if backend.name() == "torch" else None

# Keras' torch backend calls np.array(tensor, copy=False), which numpy 2 flags; not ours to fix.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

SIZES = [((32, 32, 3), 10), ((64, 64, 3), 2)]
EXPECTED_MODELS = {
    "densenet_bc_100",
    "fastnet",
    "resnet20",
    "resnet32",
    "resnet44",
    "resnet56",
    "resnet110",
    "simple_cnn",
    "vgg11",
    "vgg16",
    "wrn_16_4",
    "wrn_28_10",
}


def _np(x):
    """A tensor or Keras variable as a numpy array."""
    x = getattr(x, "value", x)
    if torch is not None and isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()  # keras' convert_to_numpy warns under numpy 2
    return keras.ops.convert_to_numpy(x)


def _images(shape, batch=2, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(batch, *shape), dtype=np.uint8)


@pytest.fixture(
    scope="module",
    params=[(name, shape, classes) for name in models.list_models() for shape, classes in SIZES],
    ids=lambda p: f"{p[0]}-{p[1][0]}px-{p[2]}cls",
)
def built(request):
    name, shape, classes = request.param
    return name, shape, classes, models.build_model(name, input_shape=shape, num_classes=classes)


# --------------------------------------------------------------------------- every model


def test_forward_gives_finite_float32_logits(built):
    name, shape, classes, model = built
    out = _np(model(_images(shape), training=False))
    assert out.shape == (2, classes)
    assert out.dtype == np.float32
    assert np.all(np.isfinite(out))
    assert tuple(model.output.shape) == (None, classes)


def _vgg_params(depth, classes, channels=3):
    from cifarkit.models.vgg import VGG_CONFIGS

    total, cin = 0, channels
    for item in VGG_CONFIGS[depth]:
        if item != "M":
            total += 9 * cin * item + 4 * item  # conv without bias + BN (gamma, beta, mean, var)
            cin = item
    return total + (cin * 512 + 512) + (512 * classes + classes)


def _simple_cnn_params(shape, classes):
    total, cin = 0, shape[-1]
    for width in (32, 64, 128):
        total += 9 * cin * width + 4 * width + 9 * width * width + 4 * width
        cin = width
    flat = (shape[0] // 8) * (shape[1] // 8) * 128
    return total + flat * 128 + 4 * 128 + 128 * classes + classes


def test_param_count(built):
    """Published counts within 5%; hand counts for the baselines; fastnet about 2M like airbench."""
    name, shape, classes, model = built
    count = models.count_params(model)
    reference = models.model_info(name)["reference_params"]
    if reference is not None:
        assert abs(count - reference) <= 0.05 * reference, (name, count, reference)
    elif name == "fastnet":
        assert 1.5e6 <= count <= 2.5e6
    elif name.startswith("vgg"):
        assert count == _vgg_params(int(name[3:]), classes)
    elif name == "simple_cnn":
        assert count == _simple_cnn_params(shape, classes)
    else:
        pytest.fail(f"No expected parameter count for {name}; add one to this test.")


@pytest.mark.skipif(backend.name() != "torch", reason="the step uses a plain PyTorch loop")
def test_one_training_step_on_cpu(built):
    name, shape, classes, model = built
    torch.manual_seed(0)
    x = torch.from_numpy(_images(shape))
    y = torch.arange(2) % classes
    before = [_np(w).copy() for w in model.trainable_weights]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = torch.nn.functional.cross_entropy(model(x, training=True), y)
    loss.backward()
    missing = [p.shape for p in model.parameters() if p.requires_grad and p.grad is None]
    optimizer.step()
    assert torch.isfinite(loss)
    assert not missing, f"{len(missing)} trainable tensors got no gradient: {missing[:3]}"
    after = [_np(w) for w in model.trainable_weights]
    assert sum(not np.array_equal(a, b) for a, b in zip(before, after)) > len(before) // 2


# --------------------------------------------------------------------------- registry and options


def test_list_models_is_sorted_and_complete():
    names = models.list_models()
    assert names == sorted(names)
    assert set(names) == EXPECTED_MODELS


def test_model_info_gives_paper_numbers():
    info = models.model_info("resnet20")
    assert info["family"] == "resnet"
    assert "He" in info["paper"] and "Table 6" in info["reference_source"]
    assert (info["reference_params"], info["reference_error_pct"]) == (270_000, 8.75)
    assert info["fixed_options"] == {"depth": 20}
    assert "width_multiplier" in info["options"] and "dropout" in info["options"]
    assert models.model_info("densenet_bc_100")["reference_error_pct"] == 4.51
    assert models.model_info("wrn_28_10")["reference_params"] == 36_500_000
    assert models.model_info("vgg16")["reference_error_pct"] is None
    for name in models.list_models():
        info = models.model_info(name)
        assert "dropout" in info["options"], name
        if info["family"] in ("simple_cnn", "vgg", "resnet", "fastnet"):
            assert "width_multiplier" in info["options"], name


def test_get_builder_binds_the_registered_settings():
    model = models.get_builder("resnet32")(num_classes=2)
    assert model.name == "resnet32"
    assert sum(name.endswith("_conv1") for name in (layer.name for layer in model.layers)) == 15


def test_unknown_model_lists_known_names():
    with pytest.raises(ValueError, match=r"Unknown model 'resnet21'\. Known models: .*resnet20"):
        models.build_model("resnet21")
    with pytest.raises(ValueError, match="Known models"):
        models.get_builder("nope")


@pytest.mark.parametrize("num_classes", [1, 0, 2.5, True, "10"])
def test_bad_num_classes(num_classes):
    with pytest.raises(ValueError, match=rf"num_classes must be an integer >= 2.*received num_classes={num_classes!r}"):
        models.build_model("simple_cnn", num_classes=num_classes)


def test_bad_options_say_what_is_accepted():
    with pytest.raises(
        TypeError, match="does not accept option.*widht_multiplier.*Options it accepts: .*width_multiplier"
    ):
        models.build_model("resnet20", widht_multiplier=2)
    with pytest.raises(ValueError, match="fixes depth=20; received depth=32"):
        models.build_model("resnet20", depth=32)
    with pytest.raises(ValueError, match="dropout must be a number in"):
        models.build_model("simple_cnn", dropout=1.5)
    with pytest.raises(ValueError, match="width_multiplier must be a positive"):
        models.build_model("fastnet", width_multiplier=0)


@pytest.mark.parametrize(
    "name, shape, minimum",
    [("vgg11", (16, 16, 3), 32), ("simple_cnn", (4, 4, 3), 8), ("fastnet", (8, 8, 3), 9), ("resnet20", (2, 2, 3), 4)],
)
def test_input_too_small_is_rejected(name, shape, minimum):
    with pytest.raises(ValueError, match=rf"at least {minimum}x{minimum} pixels.*received input_shape"):
        models.build_model(name, input_shape=shape)


@pytest.mark.parametrize("shape", [(32, 32), (3, 32, 32, 1), (32, 0, 3), "32x32"])
def test_malformed_input_shape_is_rejected(shape):
    with pytest.raises(ValueError, match="input_shape must be \\(height, width, channels\\)"):
        models.build_model("simple_cnn", input_shape=shape)


def test_non_rgb_input_and_custom_statistics():
    model = models.build_model("simple_cnn", input_shape=(28, 28, 1), num_classes=3, mean=0.2, std=[0.3])
    assert model.get_layer("preprocess").mean == [0.2]
    assert model(_images((28, 28, 1)), training=False).shape == (2, 3)
    with pytest.raises(ValueError, match=r"mean needs one number per input channel \(1\)"):
        models.build_model("simple_cnn", input_shape=(28, 28, 1), mean=(0.5, 0.5, 0.5))


def test_width_multiplier_and_dropout_options():
    narrow = models.build_model("resnet20", width_multiplier=0.5, dropout=0.2, num_classes=2)
    assert narrow.get_layer("stem_conv").filters == 8
    assert narrow.get_layer("stage3_block1_conv1").filters == 32
    assert narrow.get_layer("head_dropout").rate == 0.2
    fast = models.build_model("fastnet", width_multiplier=0.25, block_widths=(64, 128))
    assert [fast.get_layer(f"block{b}_conv1").filters for b in (1, 2)] == [16, 32]
    vgg = models.build_model("vgg11", width_multiplier=0.125)
    assert vgg.get_layer("stage5_conv2").filters == 64
    cnn = models.build_model("simple_cnn", width_multiplier=2, batch_norm=False, pooling="avg")
    assert cnn.get_layer("block3_conv2").filters == 256
    assert not any(isinstance(layer, FusedBatchNorm) for layer in cnn.layers)


def test_fastnet_stem_stride_halves_the_blocks_resolution():
    plain = models.build_model("fastnet", input_shape=(96, 96, 3), width_multiplier=0.5)
    strided = models.build_model("fastnet", input_shape=(96, 96, 3), width_multiplier=0.5, stem_stride=2)
    spatial = slice(2, 4) if backend.data_format() == "channels_first" else slice(1, 3)
    assert plain.get_layer("stem_conv").output.shape[spatial] == (95, 95)  # 2x2 valid, stride 1
    assert strided.get_layer("stem_conv").output.shape[spatial] == (48, 48)  # non-overlapping 2x2 patches
    # the blocks cost ~4x less; the stem's own cost drops with its outputs
    ratio = models.count_flops(plain, (96, 96, 3)) / models.count_flops(strided, (96, 96, 3))
    assert 3.5 < ratio < 4.5
    assert models.count_params(plain) == models.count_params(strided)  # same weights, other sampling
    with pytest.raises(ValueError, match=r"Argument `stem_stride` must be 1 or 2; received: stem_stride=3"):
        models.build_model("fastnet", stem_stride=3)
    with pytest.raises(ValueError, match="at least 17x17"):  # 2 * 2**3 + 1: three poolings after the stride
        models.build_model("fastnet", input_shape=(16, 16, 3), stem_stride=2)


def test_readable_layer_names():
    names = {layer.name for layer in models.build_model("resnet20").layers}
    assert {"preprocess", "stem_conv", "stage2_block1_conv1", "stage2_block1_bn1", "head_dense"} <= names


# --------------------------------------------------------------------------- layers


@pytest.mark.parametrize("fmt", ["channels_first", "channels_last"])
@pytest.mark.parametrize("filters", [8, 7])
def test_zero_pad_shortcut_subsamples_and_pads_channels(fmt, filters):
    x = np.arange(1 * 4 * 4 * 4, dtype="float32").reshape(1, 4, 4, 4)  # NHWC
    layer = ZeroPadShortcut(filters, strides=2, data_format=fmt)
    inp = x.transpose(0, 3, 1, 2) if fmt == "channels_first" else x
    out = _np(layer(inp))
    if fmt == "channels_first":
        out = out.transpose(0, 2, 3, 1)
    # the authors' Torch code: zeros half before, half after (the odd one after)
    expected = np.pad(
        x[:, ::2, ::2, :], [(0, 0), (0, 0), (0, 0), ((filters - 4) // 2, filters - 4 - (filters - 4) // 2)]
    )
    np.testing.assert_array_equal(out, expected)
    shape = (1, filters, 2, 2) if fmt == "channels_first" else (1, 2, 2, filters)
    assert layer.compute_output_shape(inp.shape) == shape and out.shape == (1, 2, 2, filters)
    assert layer.count_params() == 0


@pytest.mark.parametrize("fmt", ["channels_first", "channels_last"])
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_max_pool_is_keras_global_max_pooling(fmt, keepdims):
    x = np.random.default_rng(0).normal(size=(2, 3, 5, 4)).astype("float32")
    ours = GlobalMaxPool(data_format=fmt, keepdims=keepdims)
    theirs = keras.layers.GlobalMaxPooling2D(data_format=fmt, keepdims=keepdims)
    np.testing.assert_array_equal(_np(ours(x)), _np(theirs(x)))
    assert ours.get_config() | {"name": None} == theirs.get_config() | {"name": None}


@pytest.mark.parametrize("scale, offset", [(1 / 9, 0.0), (2, -1.5), ([0.5, 2.0, 1.0, 3.0], 0.0)])
def test_rescale_is_keras_rescaling(scale, offset):
    x = np.random.default_rng(0).normal(size=(2, 4)).astype("float32")
    ours, theirs = Rescale(scale, offset, dtype="float32"), keras.layers.Rescaling(scale, offset, dtype="float32")
    np.testing.assert_allclose(_np(ours(x)), _np(theirs(x)), rtol=1e-6)
    assert ours.get_config() | {"name": None} == theirs.get_config() | {"name": None}


def _bias_conv_pair(fmt, kernel, strides, padding, dilation=1):
    kwargs = dict(kernel_size=kernel, strides=strides, padding=padding, dilation_rate=dilation, data_format=fmt)
    ours, theirs = BiasConv2D(5, **kwargs), keras.layers.Conv2D(5, **kwargs)
    shape = (2, 3, 9, 9) if fmt == "channels_first" else (2, 9, 9, 3)
    ours.build(shape)
    theirs.build(shape)
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=ours.kernel.shape).astype("float32"), rng.normal(size=5).astype("float32")]
    for layer in (ours, theirs):
        layer.set_weights(weights)
    return ours, theirs, rng.normal(size=shape).astype("float32")


@pytest.mark.parametrize("fmt", ["channels_first", "channels_last"])
@pytest.mark.parametrize(
    "kernel, strides, padding, dilation, fused",
    [
        (2, 1, "valid", 1, True),
        (3, 1, "same", 1, True),
        (3, 2, "valid", 1, True),
        (3, 2, "same", 1, False),
        (2, 1, "same", 1, False),
        (3, 1, "same", 2, False),
    ],
)
def test_bias_conv_is_keras_conv2d(fmt, kernel, strides, padding, dilation, fused):
    ours, theirs, x = _bias_conv_pair(fmt, kernel, strides, padding, dilation)
    # the bias goes into torch's conv2d only for the torch backend's layout and a plain convolution
    expect = 0 if padding == "valid" else (kernel // 2, kernel // 2)
    takes = backend.name() == "torch" and fmt == "channels_first" and fused
    assert ours._torch_padding() == (expect if takes else None)
    np.testing.assert_allclose(_np(ours(x)), _np(theirs(x)), rtol=1e-5, atol=1e-5)
    assert ours.get_config() | {"name": None} == theirs.get_config() | {"name": None}
    ours.fuse_bias = False  # Keras' convolution and a separate add (bench_throughput's --unfused arm)
    assert ours._torch_padding() is None
    np.testing.assert_allclose(_np(ours(x)), _np(theirs(x)), rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(backend.name() != "torch", reason="bf16 autocast is the torch backend's")
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_bias_conv_keeps_bf16_autocast_in_bf16_and_trains_its_float32_bias(padding):
    ours, theirs, x = _bias_conv_pair("channels_first", 3, 1, padding)
    xt = torch.from_numpy(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = ours(xt)
        reference = theirs(xt)
    assert out.dtype == torch.bfloat16 and reference.dtype == torch.float32  # Keras' Conv2D promotes the sum
    np.testing.assert_allclose(out.float().detach().numpy(), reference.detach().numpy(), rtol=0.05, atol=0.1)
    out.float().sum().backward()
    bias = ours.bias.value
    assert bias.dtype == torch.float32 and bias.grad is not None and bias.grad.dtype == torch.float32
    # d(sum)/d(bias) is the number of output values per channel
    per_channel = out.shape[0] * out.shape[2] * out.shape[3]
    np.testing.assert_allclose(bias.grad.numpy(), np.full(5, per_channel), rtol=1e-6)


def _bn_pair(channels=5, momentum=0.9, epsilon=1e-3):
    axis = backend.channel_axis()
    fused = FusedBatchNorm(axis=axis, momentum=momentum, epsilon=epsilon)
    plain = keras.layers.BatchNormalization(axis=axis, momentum=momentum, epsilon=epsilon)
    shape = (8, channels, 6, 6) if axis == 1 else (8, 6, 6, channels)
    rng = np.random.default_rng(0)
    x = (rng.normal(size=shape) * 3 + 1).astype("float32")
    fused.build(shape)
    plain.build(shape)
    weights = [
        rng.uniform(0.5, 2, channels),
        rng.normal(size=channels),
        rng.normal(size=channels),
        rng.uniform(0.5, 2, channels),
    ]
    for layer in (fused, plain):
        layer.set_weights([w.astype("float32") for w in weights])
    return fused, plain, x, weights


def test_fused_batch_norm_matches_keras_in_inference():
    fused, plain, x, _ = _bn_pair()
    a = _np(fused(x, training=False))
    b = _np(plain(x, training=False))
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_fused_batch_norm_matches_keras_in_training():
    momentum = 0.9
    fused, plain, x, (_, _, mean0, var0) = _bn_pair(momentum=momentum)
    a = _np(fused(x, training=True))
    b = _np(plain(x, training=True))
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(_np(fused.moving_mean), _np(plain.moving_mean), atol=1e-5)
    # PyTorch's kernel updates the moving variance with the unbiased batch variance: factor n / (n - 1).
    n = x.size // x.shape[backend.channel_axis()]
    batch_var_fused = (_np(fused.moving_variance) - momentum * var0) / (1 - momentum)
    batch_var_plain = (_np(plain.moving_variance) - momentum * var0) / (1 - momentum)
    np.testing.assert_allclose(batch_var_fused, batch_var_plain * n / (n - 1), rtol=1e-4)


# --------------------------------------------------------------------------- cost counting


def _tiny_model(shape=(8, 8, 3)):
    fmt = backend.data_format()
    inputs = keras.Input(shape)
    x = keras.layers.Permute((3, 1, 2))(inputs) if fmt == "channels_first" else inputs
    x = keras.layers.Conv2D(4, 3, padding="same", data_format=fmt, name="c1")(x)
    x = keras.layers.Conv2D(6, 3, strides=2, padding="valid", data_format=fmt, name="c2")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", data_format=fmt, name="dw")(x)
    x = keras.layers.GlobalAveragePooling2D(data_format=fmt)(x)
    return keras.Model(inputs, keras.layers.Dense(5, name="fc")(x))


def test_count_flops_matches_hand_count():
    model = _tiny_model()
    # MACs: c1 8*8 positions * 4 filters * 3*3*3; c2 3*3 * 6 * 3*3*4; dw 3*3 * 6 * 3*3; fc 6*5
    hand = {"c1": 8 * 8 * 4 * 27, "c2": 3 * 3 * 6 * 36, "dw": 3 * 3 * 6 * 9, "fc": 6 * 5}
    assert models.count_flops(model, per_layer=True) == {k: 2 * v for k, v in hand.items()}
    assert models.count_flops(model, (8, 8, 3)) == 2 * sum(hand.values())
    # A larger image is propagated through the graph: c2 now has 7x7 outputs.
    big = {"c1": 16 * 16 * 4 * 27, "c2": 7 * 7 * 6 * 36, "dw": 7 * 7 * 6 * 9, "fc": 6 * 5}
    assert models.count_flops(model, (16, 16, 3)) == 2 * sum(big.values())
    assert models.count_params(model) == (27 * 4 + 4) + (36 * 6 + 6) + (9 * 6 + 6) + (6 * 5 + 5)


def test_activation_elements_matches_hand_count():
    model = _tiny_model()
    fmt_permute = 8 * 8 * 3 if backend.data_format() == "channels_first" else 0  # the layout move is a layer too
    # outputs per image: c1 8*8*4, c2 3*3*6, dw 3*3*6, pooling 6, fc 5
    assert common.activation_elements(model) == fmt_permute + 8 * 8 * 4 + 3 * 3 * 6 + 3 * 3 * 6 + 6 + 5
    big = 16 * 16 * 3 * (fmt_permute > 0) + 16 * 16 * 4 + 7 * 7 * 6 + 7 * 7 * 6 + 6 + 5
    assert common.activation_elements(model, (16, 16, 3)) == big
    # a model inside a model counts its own layers (not its output once more)
    inputs = keras.Input((8, 8, 3))
    outer = keras.Model(inputs, keras.layers.Dense(2, name="top")(model(inputs)))
    assert common.activation_elements(outer) == common.activation_elements(model) + 2


def test_count_flops_refuses_sizes_a_flatten_head_cannot_take():
    model = models.build_model("simple_cnn")
    assert models.count_flops(model) > 0
    with pytest.raises(ValueError, match="'head_hidden' expects 2048 input features but would receive 8192"):
        models.count_flops(model, (64, 64, 3))


def test_count_flops_resnet20_hand_count():
    # stem 32*32*16*27; stage1 6 convs 32*32*16*144; stages 2-3: one strided conv + 5 full ones; head 64*10.
    per_stage = 32 * 32 * 16 * 144
    macs = 32 * 32 * 16 * 27 + 6 * per_stage + 2 * (per_stage // 2 + 5 * per_stage) + 64 * 10
    assert models.count_flops(models.build_model("resnet20")) == 2 * macs  # ~81 MFLOPs (40.6M MACs)


# --------------------------------------------------------------------------- fastnet whitening


def _correlated_images(n=64, shape=(16, 16, 3), seed=0):
    """Smooth images (upsampled noise) so neighbouring pixels and channels correlate like photos."""
    rng = np.random.default_rng(seed)
    low = rng.uniform(0, 255, size=(n, shape[0] // 4, shape[1] // 4, 1))
    img = np.repeat(np.repeat(low, 4, axis=1), 4, axis=2) * np.array([1.0, 0.8, 0.6])
    img = img + rng.normal(0, 20, size=(n, *shape))
    return np.clip(img, 0, 255).astype(np.uint8)


def test_init_whitening_decorrelates_the_stem_output():
    images = _correlated_images()
    model = models.build_model("fastnet", input_shape=images.shape[1:], num_classes=2)
    eps = 5e-4
    eigenvalues = models.init_whitening(model, images, eps=eps)
    assert eigenvalues.shape == (12,) and np.all(np.diff(eigenvalues) <= 0)
    stem = keras.Model(model.input, model.get_layer("stem_conv").output)
    out = _np(stem(images, training=False))
    out = out.transpose(0, 2, 3, 1) if backend.data_format() == "channels_first" else out
    feats = out.reshape(-1, 24).astype(np.float64)  # stem bias starts at zero
    np.testing.assert_allclose(feats[:, 12:], -feats[:, :12], atol=1e-4)
    second_moment = feats[:, :12].T @ feats[:, :12] / len(feats)
    np.testing.assert_allclose(second_moment, np.diag(eigenvalues / (eigenvalues + eps)), atol=2e-3)
    with pytest.raises(ValueError, match=r"images shaped \(n, height, width, 3\)"):
        models.init_whitening(model, images[..., :1])


# --------------------------------------------------------------------------- saving


@pytest.mark.parametrize("name", ["resnet20", "fastnet", "simple_cnn"])
def test_save_load_round_trip_gives_identical_predictions(name, tmp_path):
    model = models.build_model(name, num_classes=3, mean=(0.5, 0.4, 0.3), std=(0.2, 0.2, 0.25))
    x = _images((32, 32, 3), batch=4)
    if name == "fastnet":
        models.init_whitening(model, x)
    if backend.name() == "torch":  # move the BN statistics away from their initial values
        model(torch.from_numpy(x), training=True)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(_np(loaded(x, training=False)), _np(model(x, training=False)))
    assert loaded.get_layer("preprocess").mean == [0.5, 0.4, 0.3]
    assert models.count_params(loaded) == models.count_params(model)


def test_count_params_counts_non_trainable_statistics():
    model = models.build_model("resnet20")
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    assert models.count_params(model) == trainable + sum(math.prod(w.shape) for w in model.non_trainable_weights)
    assert models.count_params(model) > trainable
    assert common.count_params(model) == model.count_params()


def test_fastnet_third_residual_conv_per_block():
    plain = models.build_model("fastnet")
    deep = models.build_model("fastnet", convs_per_block=3)
    assert [deep.get_layer(f"block{b}_conv3").filters for b in (1, 2, 3)] == [64, 256, 256]
    assert deep.get_layer("block2_add").input[1] is deep.get_layer("block2_gelu1").output  # around convs 2-3
    assert 1.3 < models.count_flops(deep) / models.count_flops(plain) < 1.5
    x = np.random.default_rng(0).integers(0, 256, size=(2, 32, 32, 3)).astype("float32")
    assert tuple(deep(x, training=False).shape) == (2, 10)
    with pytest.raises(ValueError, match=r"Argument `convs_per_block` must be 2 or 3; received: convs_per_block=4"):
        models.build_model("fastnet", convs_per_block=4)
