"""Figures a reader has to be able to read at the size the reports print them."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from cifarkit.analysis import plots  # noqa: E402


@pytest.mark.parametrize("classes, smallest_in", [(10, 1.0), (2, 1.0), (37, 0.5)])
def test_mean_images_are_printed_large_enough_to_see(classes, smallest_in):
    """The mean image per class filled a 0.8-inch-high strip of ten (about 0.35 in per image once printed): a row of
    coloured dots. Now each image is at least ``smallest_in`` inches on the page, and the figure fits its width."""
    means = np.random.default_rng(0).uniform(0, 1, size=(classes, 32, 32, 3))
    fig = plots.mean_images(means, [f"class {c}" for c in range(classes)])
    try:
        fig.canvas.draw()
        width, height = fig.get_size_inches()
        assert width <= plots.PAGE_WIDTH + 1e-9
        shown = [ax for ax in fig.axes if ax.images]
        assert len(shown) == classes
        for ax in shown:
            box = ax.get_window_extent()  # in pixels at the figure's dpi: the drawn image, aspect kept
            image = min(box.width, box.height) / fig.dpi
            assert image >= smallest_in, (classes, round(image, 2))
    finally:
        plt.close(fig)


@pytest.mark.parametrize("epochs", [1, 2, 4, 30])
def test_epoch_axes_tick_whole_epochs_only(epochs):
    import pandas as pd

    history = pd.DataFrame(
        {
            "epoch": np.arange(1, epochs + 1),
            "train_loss_aug": np.linspace(2.5, 1.0, epochs),
            "val_loss": np.linspace(2.6, 1.2, epochs),
            "train_acc_aug": np.linspace(0.1, 0.6, epochs),
            "val_acc": np.linspace(0.1, 0.55, epochs),
            "images_per_sec": np.full(epochs, 700.0),
        }
    )
    for fig in (plots.learning_curves(history), plots.throughput(history)):
        fig.canvas.draw()
        for ax in fig.axes:
            lo, hi = ax.get_xlim()
            ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
            # one epoch drew 0.96, 0.98, 1.00, 1.02, 1.04 (and one bar 0.6 ... 1.4) before
            assert ticks and all(float(t).is_integer() for t in ticks), ticks
            assert 1 <= len(ticks) <= 12
            if epochs == 1:
                assert ticks == [1]
        plt.close(fig)
