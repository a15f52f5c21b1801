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
    group_by="",
    labels="",
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
        group_by: the notebooks' ``GROUP_BY``: a regex whose capture group in each image's
            relative path is its group; whole groups go to one split (empty: none).
        labels: the notebooks' ``LABELS``: ``filename:REGEX`` or a CSV file
            (``path,label[,group]``); empty: class folders.
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
        group_by=group_by or None,
        labels=labels or None,
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


def require_validation(ds, needed_for: str):
    """Refuse, before any work, a study step that selects on validation when ``ds`` has no validation images.

    Args:
        ds: the loaded :class:`cifarkit.data.Dataset`.
        needed_for: what the validation split is for, completing "... needs a validation split to ...".

    Raises:
        ValueError: saying which step needs it and how to give one. Selection never falls back to the test split.
    """
    if len(ds.y_val) == 0:
        raise ValueError(
            f"This step needs a validation split to {needed_for}, but the data has none (VAL_FRACTION is 0 and "
            "the data gives no val/ folder). The test split is never used for choosing. Give VAL_FRACTION > 0 "
            "(run_all.py -p VAL_FRACTION 0.1), or leave this notebook out (--skip)."
        )
    return ds
