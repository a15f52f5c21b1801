"""The study's data: every notebook loads it the same way, with the same splits and class names.

All notebooks call :func:`load_study_data` with their parameters, so that the
splits (and the seed that makes them) are identical from exploration to
evaluation, and a custom data set's class names are applied in one place.
"""

from __future__ import annotations

from dataclasses import replace

from cifarkit.data.loader import load_dataset


def parse_class_names(class_names) -> list[str]:
    """``"cat, dog"`` or ``["cat", "dog"]`` -> ``["cat", "dog"]``; empty -> ``[]``."""
    if not class_names:
        return []
    if isinstance(class_names, str):
        names = [n.strip() for n in class_names.split(",")]
    else:
        names = [str(n).strip() for n in class_names]
    if any(not n for n in names):
        raise ValueError(
            f"Class names must be non-empty; got {class_names!r}. Give them comma-separated, like 'benign,malignant'."
        )
    if len(set(names)) != len(names):
        raise ValueError(f"Class names must be distinct; got {names}.")
    return names


def load_study_data(
    data: str | None = None,
    *,
    image_size: int = 32,
    subset: int = 0,
    val_fraction: float = 0.1,
    seed: int = 0,
    class_names="",
    progress: bool = False,
    **kwargs,
):
    """Load the study's data with the notebooks' parameters.

    Args:
        data: the source (``""``/``None`` for the official CIFAR-10 archive; see
            :func:`cifarkit.data.load_dataset` for folders, archives and ``synthetic:N``).
        image_size: side of the square images the models see.
        subset: images per class per split (0 loads everything).
        val_fraction: share of the training data held out for validation.
        seed: seed of the splits.
        class_names: display names for the data's classes, in the order of its
            own class names (sorted folder names), comma-separated or a list.
            Empty keeps the data's own names.
        **kwargs: passed on to :func:`cifarkit.data.load_dataset`.

    Returns:
        A :class:`cifarkit.data.Dataset`.
    """
    ds = load_dataset(
        data or None,
        image_size=int(image_size),
        subset=int(subset) or None,
        val_fraction=val_fraction,
        seed=seed,
        progress=progress,
        **kwargs,
    )
    names = parse_class_names(class_names)
    if names:
        if len(names) != ds.num_classes:
            raise ValueError(
                f"{len(names)} class names were given ({', '.join(names)}) but the data has {ds.num_classes} classes "
                f"({', '.join(ds.class_names)}). Give one name per class, in that order, or none."
            )
        ds = replace(ds, class_names=names)
    return ds
