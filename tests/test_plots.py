"""Every figure is a real PNG written atomically; bad input fails before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from datalign.core.errors import DataError
from datalign.plotting.charts import (
    DPI,
    _moving_average,
    alignment_heatmap,
    coefficient_bars,
    correlation_scatter,
    loss_curves,
)
from datalign.stats.correlation import correlation_stats

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _check_png(path: Path, min_w: int = 300, min_h: int = 250) -> np.ndarray:
    """The file is a PNG matplotlib can decode, of a plausible size, with no temp siblings."""
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    img = mpimg.imread(path)
    h, w = img.shape[:2]
    assert img.ndim == 3 and img.shape[2] in (3, 4)
    # Figures are a few inches at 150 dpi: hundreds to a few thousand pixels a side.
    assert min_w <= w <= 4000 and min_h <= h <= 4000, (w, h)
    # Not a blank canvas: a drawn figure has many distinct colours.
    rgb = np.round(img[..., :3] * 255).astype(np.uint32)
    assert len(np.unique(rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2])) > 20
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    return img


def _points(n: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.45, 0.75, n)
    y = 9.0 - 8.0 * x + rng.normal(scale=0.3, size=n)
    return x, y


def test_heatmap_writes_png(tmp_path: Path) -> None:
    values = np.random.default_rng(0).uniform(0.3, 0.9, size=(4, 5))
    out = alignment_heatmap(values, list("abcd"), [f"eval_{i}" for i in range(5)],
                            tmp_path / "heat.png", "alignment")
    assert out == tmp_path / "heat.png"
    _check_png(out)


def test_heatmap_handles_nan_cells(tmp_path: Path) -> None:
    values = np.array([[1.0, np.nan, 0.4], [0.5, 0.6, np.nan], [np.nan, np.nan, np.nan]])
    _check_png(alignment_heatmap(values, ["a", "b", "c"], ["x", "y", "z"], tmp_path / "nan.png", "t"))
    all_nan = tmp_path / "allnan" / "h.png"
    _check_png(alignment_heatmap(np.full((2, 2), np.nan), ["a", "b"], ["c", "d"], all_nan, "t",
                                 annotate=False, cmap="magma"))


def test_heatmap_dpi_sets_pixel_size(tmp_path: Path) -> None:
    # Same matrix at 150 dpi: a 10x10 figure is larger than a 2x2 one, in proportion to inches.
    small = _check_png(alignment_heatmap(np.eye(2), ["a", "b"], ["a", "b"], tmp_path / "s" / "a.png", "t"))
    names = [f"d{i}" for i in range(10)]
    big = _check_png(alignment_heatmap(np.eye(10), names, names, tmp_path / "b" / "a.png", "t"))
    assert big.shape[1] > small.shape[1] + 2 * DPI


def test_heatmap_rejects_bad_shapes(tmp_path: Path) -> None:
    target = tmp_path / "bad.png"
    with pytest.raises(DataError, match="row_labels has 1 entries, expected 2"):
        alignment_heatmap(np.zeros((2, 2)), ["a"], ["a", "b"], target, "t")
    with pytest.raises(DataError, match="2-D"):
        alignment_heatmap(np.zeros(3), ["a"], ["a", "b", "c"], target, "t")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("with_extras", [False, True])
def test_correlation_scatter_writes_png(tmp_path: Path, with_extras: bool) -> None:
    x, y = _points(24)
    stats = correlation_stats(x, y, bootstrap=200)
    labels = [f"train_{i % 3}->eval_{i // 3}" for i in range(24)]
    kwargs = {}
    if with_extras:
        kwargs = {"xerr": np.vstack([np.full(24, 0.01), np.full(24, 0.02)]),
                  "groups": [f"eval_{i // 3}" for i in range(24)]}
    out = correlation_scatter(x, y, labels, stats, tmp_path / "scatter.png", "pretrain", **kwargs)
    _check_png(out)


def test_correlation_scatter_minimal_inputs(tmp_path: Path) -> None:
    x = np.array([0.2, 0.5, 0.9])
    y = np.array([1.0, 3.0, 2.0])
    stats = correlation_stats(x, y, bootstrap=0)  # no CI, no Fisher interval at n = 3
    _check_png(correlation_scatter(x, y, None, stats, tmp_path / "s.png", "t", xerr=np.full(3, 0.05)))


def test_correlation_scatter_rejects_bad_input(tmp_path: Path) -> None:
    x, y = _points(5)
    stats = correlation_stats(x, y, bootstrap=0)
    target = tmp_path / "s.png"
    with pytest.raises(DataError, match="labels has 4 entries, expected 5"):
        correlation_scatter(x, y, list("abcd"), stats, target, "t")
    with pytest.raises(DataError, match="xerr has shape"):
        correlation_scatter(x, y, None, stats, target, "t", xerr=np.zeros(4))
    with pytest.raises(DataError, match="negative"):
        correlation_scatter(x, y, None, stats, target, "t", xerr=-np.ones(5))
    assert list(tmp_path.iterdir()) == []


def test_loss_curves_writes_png(tmp_path: Path) -> None:
    steps = np.arange(1, 101)
    curves = {
        "py_code": (steps * 2048, 6.0 * steps ** -0.3 + 0.05 * np.sin(steps)),
        "bbc_news": (steps * 2048, 7.0 * steps ** -0.2),
        "one_step": (np.array([4096]), np.array([5.0])),
    }
    _check_png(loss_curves(curves, tmp_path / "a" / "loss.png", "finetune"))
    _check_png(loss_curves(curves, tmp_path / "b" / "loss.png", "finetune", smooth=10, log_y=True))


def test_loss_curves_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no curves"):
        loss_curves({}, tmp_path / "l.png", "t")
    with pytest.raises(DataError, match="smooth"):
        loss_curves({"a": ([1, 2], [3, 4])}, tmp_path / "l.png", "t", smooth=0)
    with pytest.raises(DataError, match="'a'.* loss has 3 values, expected 2"):
        loss_curves({"a": ([1, 2], [3, 4, 5])}, tmp_path / "l.png", "t")
    assert list(tmp_path.iterdir()) == []


def test_moving_average_matches_loop() -> None:
    v = np.random.default_rng(1).normal(size=30)
    expected = [v[i:i + 7].mean() for i in range(30 - 6)]
    np.testing.assert_allclose(_moving_average(v, 7), expected, rtol=1e-12)
    np.testing.assert_array_equal(_moving_average(v, 1), v)
    v[3] = np.nan
    smoothed = _moving_average(v, 7)
    assert np.isnan(smoothed[:4]).all() and np.isfinite(smoothed[4:]).all()


def test_coefficient_bars_writes_png(tmp_path: Path) -> None:
    names = ["py_docstrings", "py_code", "pydoc_topics", "bbc_news"]
    values = np.array([0.12, 0.08, 0.15, 0.2])
    low = np.array([0.10, 0.09, np.nan, 0.18])  # a CI above its estimate, and a missing one
    high = np.array([0.14, 0.11, np.nan, 0.23])
    _check_png(coefficient_bars(names, values, low, high, tmp_path / "div.png", "diversity", "diversity"))


def test_coefficient_bars_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="ci_low > ci_high for 'b'"):
        coefficient_bars(["a", "b"], [1, 2], [0.5, 2.5], [1.5, 1.5], tmp_path / "c.png", "t", "y")
    with pytest.raises(DataError, match="values has 1 values, expected 2"):
        coefficient_bars(["a", "b"], [1], [0, 0], [1, 1], tmp_path / "c.png", "t", "y")
    assert list(tmp_path.iterdir()) == []


def test_overwrites_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "h.png"
    target.write_bytes(b"stale")
    alignment_heatmap(np.eye(2), ["a", "b"], ["a", "b"], target, "t")
    _check_png(target)


def test_failure_while_saving_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from matplotlib.figure import Figure

    def broken(self: Figure, *args: object, **kwargs: object) -> None:
        Path(args[0]).write_bytes(PNG_SIGNATURE)  # a half-written file
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken)
    with pytest.raises(OSError, match="disk full"):
        alignment_heatmap(np.eye(2), ["a", "b"], ["a", "b"], tmp_path / "h.png", "t")
    assert list(tmp_path.iterdir()) == []


def test_same_input_gives_identical_bytes(tmp_path: Path) -> None:
    # Artifacts are DVC-tracked: a re-run must not change the file's hash.
    x, y = _points(10)
    stats = correlation_stats(x, y, bootstrap=100)
    labels = [f"p{i}" for i in range(10)]
    a = correlation_scatter(x, y, labels, stats, tmp_path / "a" / "s.png", "t")
    b = correlation_scatter(x, y, labels, stats, tmp_path / "b" / "s.png", "t")
    assert a.read_bytes() == b.read_bytes()


def test_labels_of_clustered_points_do_not_overlap() -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from datalign.plotting.charts import _overlap, _place_labels

    fig = Figure(figsize=(6.4, 4.8), dpi=DPI)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    # Three near-coincident points, a pair, and two loners.
    x = np.array([0.50, 0.505, 0.51, 0.60, 0.605, 0.40, 0.70])
    y = np.array([4.00, 4.02, 3.98, 3.50, 3.52, 5.00, 3.00])
    ax.scatter(x, y)
    canvas.draw()
    renderer = canvas.get_renderer()
    labels = [f"train_set_{i}" for i in range(len(x))]
    _place_labels(ax, renderer, x, y, labels, [])
    texts = [t for t in ax.texts if t.get_text() in labels]
    assert sorted(t.get_text() for t in texts) == sorted(labels)
    boxes = [tuple(t.get_window_extent(renderer).extents) for t in texts]
    frame = ax.get_window_extent(renderer).extents
    for i, a in enumerate(boxes):
        assert a[0] >= frame[0] and a[2] <= frame[2] and a[1] >= frame[1] and a[3] <= frame[3]
        for b in boxes[i + 1:]:
            assert _overlap(a, b) == 0.0


def test_correlation_scatter_legend_names_the_evaluation_set_and_its_reference(tmp_path: Path) -> None:
    """One evaluation set still gets its legend entry, and its reference line one too."""
    from PIL import Image

    x = np.array([0.1, 0.2, 0.3, 0.4])
    y = np.array([3.0, 2.8, 2.7, 2.4])
    stats = correlation_stats(x, y, bootstrap=50)
    path = correlation_scatter(x, y, list("abcd"), stats, tmp_path / "s.png", "finetune",
                               groups=["proofs"] * 4, group_title="evaluation set",
                               references={"proofs": 2.9}, reference_label="untuned base")
    legend = json.loads(Image.open(path).text["Legend"])
    assert "proofs" in legend and "untuned base: proofs" in legend
    assert Image.open(path).text["Title"] == "finetune"
    with pytest.raises(DataError, match="not finite"):
        correlation_scatter(x, y, None, stats, tmp_path / "t.png", "t", references={"p": float("nan")})
