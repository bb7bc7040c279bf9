"""Mixture interventions: the aligned component found and monotonicity judged correctly."""

from __future__ import annotations

import pandas as pd

from datalign.studies.alignment.summary import mixture_interventions, summary_markdown


def _pairs(values: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"row": f"{k}/train", "col": "code/test", "alignment": v} for k, v in values.items()]
    )


DATASETS = {
    "code": {"source": "stdlib"},
    "news": {"source": "package"},
    "mix25": {"source": "mixture", "components": {"code": 0.25, "news": 0.75}},
    "mix75": {"source": "mixture", "components": {"code": 0.75, "news": 0.25}},
}


def test_monotonic_rise_in_the_aligned_share():
    pairs = _pairs({"code": 0.9, "news": 0.5, "mix25": 0.6, "mix75": 0.8})
    [item] = mixture_interventions(DATASETS, pairs, ["code"])
    assert item["aligned_component"] == "code"
    assert item["shares"] == [0.0, 0.25, 0.75, 1.0]
    assert item["datasets"] == ["news", "mix25", "mix75", "code"]
    assert item["monotonic"]
    assert "rises monotonically" in summary_markdown({"correlation": {}, "interventions": [item]})


def test_a_dip_is_not_monotonic():
    pairs = _pairs({"code": 0.9, "news": 0.5, "mix25": 0.45, "mix75": 0.8})
    [item] = mixture_interventions(DATASETS, pairs, ["code"])
    assert not item["monotonic"]


def test_family_skipped_when_a_pure_component_was_not_embedded():
    pairs = _pairs({"code": 0.9, "mix25": 0.6, "mix75": 0.8})
    assert mixture_interventions(DATASETS, pairs, ["code"]) == []
