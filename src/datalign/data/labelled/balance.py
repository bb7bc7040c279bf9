"""Equal samples per class by seeded subsampling, and stratified train/test splits.

The spectral-imbalance study (Kaushik et al., ICML 2024) asks why classes
differ in accuracy even when every class has the same number of examples, so
every prepared split holds exactly the same count per class.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split

from datalign.core.errors import DataError


def class_counts(labels: np.ndarray, class_names: list[str] | tuple[str, ...]) -> dict[str, int]:
    """``{class name: examples}`` for int labels ``(n,)`` in ``0 .. len(class_names) - 1``."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(class_names))
    return {c: int(n) for c, n in zip(class_names, counts, strict=False)}


def check_classes(
    labels: np.ndarray, class_names: list[str] | tuple[str, ...], where: str, label_column: str = "label"
) -> None:
    """Labels must name known classes, and more than one class must be present.

    Raises DataError naming ``where``, the row and the label for a label
    outside ``0 .. k-1``, and the only class present when there is one.
    """
    labels = np.asarray(labels)
    k = len(class_names)
    if labels.size == 0:
        raise DataError(f"{where}: no labelled rows")
    bad = np.flatnonzero((labels < 0) | (labels >= k))
    if bad.size:
        raise DataError(f"{where}: row {int(bad[0])} has label {int(labels[bad[0]])}, outside 0..{k - 1} ({k} classes)")
    present = np.unique(labels)
    if present.size < 2:
        only = int(present[0])
        raise DataError(
            f"{where}: the {label_column} column holds one class ({class_names[only]!r}, label {only}, "
            f"{labels.size} rows); a classification set needs two or more"
        )


def check_present(
    parts: dict[str, np.ndarray], class_names: list[str] | tuple[str, ...], where: str
) -> None:
    """Every class must occur in every part; DataError naming the class, the part and the other parts' counts."""
    counts = {p: class_counts(y, class_names) for p, y in parts.items()}
    for part, per_class in counts.items():
        for label, cls in enumerate(class_names):
            if per_class[cls] == 0:
                elsewhere = ", ".join(f"{q} {counts[q][cls]}" for q in counts if q != part)
                raise DataError(
                    f"{where}: class {cls!r} (label {label}) is absent from {part}"
                    + (f" (present elsewhere: {elsewhere})" if elsewhere else "")
                )


def balance_indices(
    labels: np.ndarray,
    class_names: list[str] | tuple[str, ...],
    per_class: int | None,
    seed: int,
    where: str,
) -> np.ndarray:
    """Indices of a seeded subsample with ``per_class`` rows of every class, in seeded random order.

    ``per_class=None`` takes the smallest class's count. Returns int64
    ``(per_class * k,)``. Raises DataError naming the class and both numbers
    when a class has fewer rows than asked, and when ``per_class < 1``.
    """
    labels = np.asarray(labels, dtype=np.int64)
    counts = class_counts(labels, class_names)
    smallest = min(counts.values())
    want = smallest if per_class is None else int(per_class)
    if want < 1:
        raise DataError(f"{where}: per_class must be at least 1, got {want}")
    for label, cls in enumerate(class_names):
        if counts[cls] < want:
            raise DataError(
                f"{where}: class {cls!r} (label {label}) has {counts[cls]} samples, fewer than the "
                f"{want} per class asked"
            )
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(np.flatnonzero(labels == c), size=want, replace=False) for c in range(len(class_names))]
    picked = np.concatenate(chosen)
    return picked[rng.permutation(picked.size)].astype(np.int64)


def stratified_split(
    labels: np.ndarray, n_classes: int, test_per_class: int, seed: int, where: str
) -> tuple[np.ndarray, np.ndarray]:
    """Positions (train, test) into a balanced ``labels`` with ``test_per_class`` of each class in test.

    ``labels`` must hold the same count ``m`` of every class (see
    :func:`balance_indices`) and ``1 <= test_per_class < m``; the split is
    scikit-learn's ``train_test_split(stratify=labels)`` with a test size of
    ``test_per_class * n_classes``, which then yields exactly ``test_per_class``
    per class. Raises DataError naming ``where`` and the numbers otherwise.
    """
    labels = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(labels, minlength=n_classes)
    if counts.min() != counts.max():
        raise DataError(f"{where}: stratified split needs balanced classes, got counts {counts.tolist()}")
    m = int(counts[0])
    if not 1 <= test_per_class < m:
        raise DataError(
            f"{where}: {test_per_class} test samples per class leaves no train or test split of "
            f"{m} per class (need 1 <= test_per_class < {m})"
        )
    positions = np.arange(labels.size)
    train, test = train_test_split(
        positions, test_size=test_per_class * n_classes, stratify=labels, random_state=seed % 2**32
    )
    return np.asarray(train, dtype=np.int64), np.asarray(test, dtype=np.int64)
