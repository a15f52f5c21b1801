"""Stratified group splitting: whole groups (patients, parts, sessions) go to one split each.

Images of one group (several scans of one patient, crops of one part, frames of
one session) resemble each other more than images of different groups. A test
split that shares groups with training measures how well the model remembers
those groups, not how it does on new ones. Here every group lands in exactly one
part, and the class proportions are kept as well as the group sizes allow.

Like :mod:`.splits`, this works on labels and group ids only, before anything is decoded.

The algorithm (seeded; the same seed gives the same split):

1. **Coverage.** The training part, and every carved part with a fraction above
   0, gets at least one group holding each class. Classes are served scarcest
   first (fewest groups); for each part still lacking a class, the unassigned
   group holding it that brings the part closest to its targets (the cost
   below) is taken, passing over groups whose move would leave another class
   fewer unassigned groups than parts still lacking it.
2. **Balance.** The remaining groups, largest first (ties in a seeded random
   order), each go to the part where they reduce the squared shortfall of the
   per-class proportions most. The cost of adding group ``g`` (``g_c`` images of
   class ``c``) to part ``k`` (``n_kc`` so far, target ``t_kc = f_k * N_c``) is
   ``sum_c ((n_kc + g_c - t_kc)^2 - (n_kc - t_kc)^2) / N_c^2``: proportions of
   every class weigh alike, however rare the class.

With many small groups the parts come out within a few images of their
targets; with a few large groups they cannot, and the proportions follow the
groups (``tests/test_groups_and_labels.py`` checks both over hundreds of random
groupings).
"""

from __future__ import annotations

import numpy as np

from .errors import DataError

# A random stream of its own (see splits._STREAM_*): the tie-break order of the groups.
_STREAM_GROUPS = 8
_PART_NAMES = {"val_fraction": "validation", "test_fraction": "test"}


def parts_needed(fractions) -> int:
    """How many parts a split makes that must each get a group of every class: training plus every fraction above 0."""
    return 1 + sum(1 for f in fractions if f > 0)


def groups_per_class(labels: np.ndarray, groups: np.ndarray, num_classes: int) -> np.ndarray:
    """The number of distinct groups holding each class, shape ``(num_classes,)``."""
    labels = np.asarray(labels, dtype=np.int64)
    if not len(labels):
        return np.zeros(num_classes, dtype=np.int64)
    _, g_of = np.unique(np.asarray(groups), return_inverse=True)
    pairs = np.unique(np.stack([labels, g_of.ravel()]), axis=1)
    return np.bincount(pairs[0], minlength=num_classes)


def check_group_counts(labels, groups, fractions: dict[str, float], class_names: list[str], where: str) -> None:
    """DataError when some class has images from too few groups to give every part one of its groups.

    Args:
        labels, groups: the images the parts are carved from (int labels, group ids).
        fractions: the argument name and fraction of each carved part, in carving order,
            e.g. ``{"val_fraction": 0.1, "test_fraction": 0.1}``.
        class_names: every class (a class without images counts as having 0 groups).
        where: how to name the data in the message.
    """
    needed = parts_needed(fractions.values())
    per_class = groups_per_class(labels, groups, len(class_names))
    small = [(c, int(n)) for c, n in enumerate(per_class) if n < needed]
    if not small:
        return
    n_groups = len(np.unique(np.asarray(groups))) if len(groups) else 0
    asked = ", ".join(f"{k}={v:g}" for k, v in fractions.items()) or "no carved split"
    parts = ["training"] + [_PART_NAMES[k] for k, v in fractions.items() if v > 0]
    listed = ", ".join(f"{class_names[c]!r} ({n})" for c, n in small[:10])
    listed += f" and {len(small) - 10} more" if len(small) > 10 else ""
    raise DataError(
        f"{where}: too few groups for the requested split ({asked}; {n_groups} groups in all): whole groups go "
        f"to one split each, so every class needs images from at least {needed} groups ({', '.join(parts)} "
        f"each get one). Too few (groups): {listed}. Add images from more groups, give the data its own "
        "validation/test folders, choose a fraction of 0 to go without that split, or check the group regex."
    )


def stratified_group_split(
    labels: np.ndarray,
    groups: np.ndarray,
    fractions: list[float],
    seed: int,
    *,
    class_names: list[str] | None = None,
    part_names: list[str] | None = None,
    where: str = "the data",
) -> list[np.ndarray]:
    """Split indices so that each group lands in one part, class proportions kept as well as groups allow.

    Args:
        labels: int array of shape ``(N,)``.
        groups: group id of each image (any sortable values, e.g. strings), shape ``(N,)``.
        fractions: the share of the images to move into each carved-out part.
        seed: seed of the tie-break order.
        class_names, part_names, where: for the message when a class cannot reach every part
            (only possible when groups hold several classes; check first with
            :func:`check_group_counts`): the classes, the carved parts (e.g. ``["validation", "test"]``)
            and the data.

    Returns:
        ``[rest, part_1, ..., part_k]`` as :func:`cifarkit.data.splits.stratified_split`
        returns them: sorted, disjoint index arrays covering ``range(N)``.

    Raises:
        DataError: a class cannot be given to every part (fraction above 0) with whole groups.
    """
    labels = np.asarray(labels, dtype=np.int64)
    groups = np.asarray(groups)
    if labels.shape != groups.shape:
        raise ValueError(f"labels and groups differ in shape: {labels.shape} vs {groups.shape}.")
    n_parts = len(fractions) + 1
    if not len(labels):
        return [np.zeros(0, dtype=np.int64) for _ in range(n_parts)]
    ids, g_of = np.unique(groups, return_inverse=True)
    g_of = g_of.ravel()
    classes, c_of = np.unique(labels, return_inverse=True)
    counts = np.zeros((len(ids), len(classes)))
    np.add.at(counts, (g_of, c_of.ravel()), 1.0)
    shares = np.array([1.0 - float(sum(fractions)), *map(float, fractions)])
    totals = counts.sum(axis=0)
    target = shares[:, None] * totals[None, :]
    weight = 1.0 / totals**2
    active = [k for k in range(n_parts) if shares[k] > 0]
    part = np.full(len(ids), -1, dtype=np.int64)
    current = np.zeros((n_parts, len(classes)))
    tiebreak = np.random.default_rng([int(seed), _STREAM_GROUPS]).permutation(len(ids))
    has = counts > 0

    def costs(pool: np.ndarray, k: int) -> np.ndarray:
        g = counts[pool]
        return (g * (g + 2.0 * (current[k] - target[k])) * weight).sum(axis=1)

    def best(pool: np.ndarray, k: int) -> int:
        return int(pool[np.lexsort((tiebreak[pool], costs(pool, k)))[0]])

    # 1. coverage: every active part gets a group of every class, scarcest classes first
    order = np.lexsort((np.arange(len(classes)), has.sum(axis=0)))
    serve = [k for k in active if k != 0] + [0]  # the small carved parts choose first
    for c in order:
        for k in serve:
            if current[k, c] > 0:
                continue
            pool = np.flatnonzero(has[:, c] & (part < 0))
            if not len(pool):
                continue  # reported below
            free = (has & (part < 0)[:, None]).sum(axis=0)
            lacking = (current[active] == 0).sum(axis=0)
            room = free - 1 - lacking + (current[k] == 0)  # per class, after moving one of its groups to k
            keeps_room = ((room[None, :] >= 0) | ~has[pool]).all(axis=1)
            g = best(pool[keeps_room] if keeps_room.any() else pool, k)
            part[g] = k
            current[k] += counts[g]

    # 2. balance: the rest, largest first
    rest = np.flatnonzero(part < 0)
    sizes = counts.sum(axis=1)
    for g in rest[np.lexsort((tiebreak[rest], -sizes[rest]))]:
        k = active[int(np.argmin([costs(np.array([g]), k)[0] for k in active]))]
        part[g] = k
        current[k] += counts[g]

    missing = [(k, c) for k in active for c in range(len(classes)) if current[k, c] == 0]
    if missing:
        k, c = missing[0]
        name = class_names[classes[c]] if class_names is not None else str(classes[c])
        names = part_names or [f"carved part {i}" for i in range(1, n_parts)]
        which = ["training", *names][k]
        raise DataError(
            f"{where}: no way was found to give the {which} split an image of class {name!r} with whole groups: "
            f"its {int(has[:, c].sum())} groups also hold images of other classes that the other splits need. "
            "Add images of that class from more groups, or choose a fraction of 0 to go without that split."
        )
    image_part = part[g_of]
    return [np.flatnonzero(image_part == k) for k in range(n_parts)]
