"""The CIFAR-10-C constants: corruption names, groups, parameters per severity, published reference points.

Every number in :data:`PARAMETERS` is the CIFAR-10 value of Hendrycks & Dietterich's
``make_cifar_c.py`` (repository hendrycks/robustness, ``ImageNet-C/create_c/make_cifar_c.py``),
field for field and in the paper's units; the functions of :mod:`cifarkit.analysis.corruptions_ops`
read them from here and from nowhere else.
"""

from __future__ import annotations

import numpy as np

#: The 15 benchmark corruptions in the paper's order (noise, blur, weather, digital).
CORRUPTIONS_C = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "defocus_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "frost",
    "fog",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
)

#: The paper's four groups, each in the paper's order.
GROUPS = {
    "noise": ["gaussian_noise", "shot_noise", "impulse_noise"],
    "blur": ["defocus_blur", "glass_blur", "motion_blur", "zoom_blur"],
    "weather": ["snow", "frost", "fog"],
    "digital": ["brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression"],
}

SEVERITIES = (1, 2, 3, 4, 5)


def _by_severity(fields: tuple, rows: list, **fixed) -> dict:
    """``{severity: {field: value, ..., **fixed}}`` from the paper's list of per-severity tuples."""
    if len(rows) != len(SEVERITIES):
        raise AssertionError(f"{len(rows)} rows for {len(SEVERITIES)} severities")
    return {s: {**dict(zip(fields, row, strict=True)), **fixed} for s, row in zip(SEVERITIES, rows)}


# The paper builds the zoom factors with np.arange(1, stop, 0.01); floating point makes the first one
# 1.00..1.06 (7 factors, 1.06 included) and the others 1.00..1.10 / 1.15 / 1.20 / 1.25 (12, 16, 21, 26).
_ZOOM_STOPS = (1.06, 1.11, 1.16, 1.21, 1.26)

#: ``PARAMETERS[name][severity]`` -> the constants of that corruption at that severity (``make_cifar_c.py``).
#: Units: 0..1 pixel values for noise std, brightness shift and the snow/fog layers; pixels at 32 px for
#: blur radii and sigmas (scaled by side/32 at other sizes, see ``corruptions_ops``); fractions of the image
#: side for ``elastic_transform`` (the paper writes ``IMSIZE * fraction`` with IMSIZE = 32).
PARAMETERS: dict[str, dict[int, dict]] = {
    # x/255 + N(0, std^2), clipped to 0..1
    "gaussian_noise": _by_severity(("std",), [(0.04,), (0.06,), (0.08,), (0.09,), (0.10,)]),
    # Poisson(x/255 * photons) / photons, clipped
    "shot_noise": _by_severity(("photons",), [(500,), (250,), (100,), (75,), (50,)]),
    # skimage.util.random_noise(mode="s&p"): each value is replaced with probability `amount`, half by 0, half by 1
    "impulse_noise": _by_severity(("amount",), [(0.01,), (0.02,), (0.03,), (0.05,), (0.07,)]),
    # disk kernel of `radius` (17x17 window) anti-aliased by a 3x3 Gaussian of sigma `alias_blur`
    "defocus_blur": _by_severity(("radius", "alias_blur"), [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)]),
    # Gaussian blur (sigma), `iterations` passes of the local pixel shuffle (offsets in [-max_delta, max_delta)), blur again
    "glass_blur": _by_severity(
        ("sigma", "max_delta", "iterations"),
        [(0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)],
    ),
    # ImageMagick MotionBlurImage(radius, sigma, angle ~ U(angle_range)) on the 8-bit image
    "motion_blur": _by_severity(
        ("radius", "sigma"), [(6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)], angle_range=(-45.0, 45.0)
    ),
    # mean of the image and its centre-cropped zooms by each factor
    "zoom_blur": _by_severity(
        ("zooms",), [(tuple(float(z) for z in np.arange(1, stop, 0.01)),) for stop in _ZOOM_STOPS]
    ),
    # layer N(mean, std) zoomed by `zoom`, values < threshold set to 0, motion-blurred (radius, sigma,
    # angle ~ U(angle_range)); image = blend * x + (1 - blend) * max(x, 1.5 * grey + 0.5); add layer + its 180° turn
    "snow": _by_severity(
        ("mean", "std", "zoom", "threshold", "radius", "sigma", "blend"),
        [
            (0.1, 0.2, 1, 0.6, 8, 3, 0.95),
            (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
            (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
            (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
            (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
        ],
        angle_range=(-135.0, -45.0),
    ),
    # image_weight * x + frost_weight * (random crop of one of the frost photos resized by `resize`)
    # The paper draws the photo with np.random.randint(5): only the first five of its six photos are ever used.
    "frost": _by_severity(
        ("image_weight", "frost_weight"),
        [(1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)],
        resize=0.2,
        photos=("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg"),
    ),
    # x + strength * plasma fractal (diamond-square, 32x32, wibble decay), rescaled by max / (max + strength)
    "fog": _by_severity(("strength", "wibble_decay"), [(0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)]),
    # add `shift` to the HSV value (skimage.color), clipped to 0..1
    "brightness": _by_severity(("shift",), [(0.05,), (0.1,), (0.15,), (0.2,), (0.3,)]),
    # (x - per-image channel mean) * factor + mean
    "contrast": _by_severity(("factor",), [(0.75,), (0.5,), (0.4,), (0.3,), (0.15,)]),
    # alpha, sigma, affine: fractions of the image side (IMSIZE * fraction in the paper)
    "elastic_transform": _by_severity(
        ("alpha", "sigma", "affine"),
        [(0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03)],
    ),
    # Pillow BOX resize to int(side * scale), then BOX back
    "pixelate": _by_severity(("scale",), [(0.95,), (0.9,), (0.85,), (0.75,), (0.65,)]),
    # Pillow JPEG at this quality
    "jpeg_compression": _by_severity(("quality",), [(80,), (65,), (58,), (50,), (40,)]),
}

#: Published mean CIFAR-10-C accuracies (%), each the mean over the 15 corruptions x 5 severities of the
#: full 10,000-image CIFAR-10-C (the released .npy files, not regenerated images), for comparison with
#: ``cifar10c_table(...).attrs["mean"]`` (a fraction; multiply by 100).
REFERENCE_POINTS = {
    "robustbench_standard_wrn_28_10": {
        "model": "WideResNet-28-10, standard training (RobustBench model ID 'Standard')",
        "label": "WRN-28-10, standard training",  # a figure's legend
        "mean_corruption_acc": 73.46,
        "clean_acc": 94.78,
        "what": "mean accuracy over the 15 CIFAR-10-C corruptions x 5 severities, %",
        "source": (
            "RobustBench leaderboard, CIFAR-10, Common Corruptions table (README of github.com/RobustBench/robustbench; "
            "robustbench.github.io): 'Standard', clean 94.78%, robust accuracy 73.46%. Checked in the README table."
        ),
    },
    "augmix_wrn_40_2": {
        "model": "WideResNet-40-2 trained with AugMix (RobustBench model ID 'Hendrycks2020AugMix_WRN')",
        "label": "WRN-40-2 with AugMix",  # a figure's legend
        "mean_corruption_acc": 88.82,
        "clean_acc": 95.08,
        "what": "mean accuracy over the 15 CIFAR-10-C corruptions x 5 severities, %",
        "source": (
            "RobustBench leaderboard, CIFAR-10, Common Corruptions table (same README): 'Hendrycks2020AugMix_WRN', "
            "clean 95.08%, robust accuracy 88.82%. Hendrycks, Mu et al., 'AugMix', ICLR 2020 (arXiv:1912.02781) "
            "report 11.2% mean CIFAR-10-C error (88.8%) for WRN-40-2 + AugMix; that table was not re-read here."
        ),
    },
}
