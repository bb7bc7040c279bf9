"""The summary: interventions against their targets, correlation and reference in words."""

from __future__ import annotations

import pandas as pd

from datalign.studies.alignment.summary import (
    correlation_reading,
    intervention_targets,
    mixture_interventions,
    reference_outcome,
    summary_markdown,
    untargeted_families,
)


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
    [item] = mixture_interventions(DATASETS, pairs, {"code": ["code"]})
    assert item["aligned_component"] == "code"
    assert item["shares"] == [0.0, 0.25, 0.75, 1.0]
    assert item["datasets"] == ["news", "mix25", "mix75", "code"]
    assert item["monotonic"]
    assert "rises monotonically" in summary_markdown({"correlation": {}, "interventions": [item]})


def test_a_dip_is_not_monotonic():
    pairs = _pairs({"code": 0.9, "news": 0.5, "mix25": 0.45, "mix75": 0.8})
    [item] = mixture_interventions(DATASETS, pairs, {"code": ["code"]})
    assert not item["monotonic"]


def test_family_skipped_when_a_pure_component_was_not_embedded():
    pairs = _pairs({"code": 0.9, "mix25": 0.6, "mix75": 0.8})
    assert mixture_interventions(DATASETS, pairs, {"code": ["code"]}) == []


def test_a_trend_is_reported_only_against_the_set_the_mixture_targets():
    """Two evaluation sets; the mixtures mix code into news, so only 'code' is their target."""
    pairs = pd.concat([
        _pairs({"code": 0.9, "news": 0.5, "mix25": 0.6, "mix75": 0.8}),
        _pairs({"code": 0.7, "news": 0.4, "mix25": 0.5, "mix75": 0.6}).assign(col="prose/test"),
    ])
    config = {"datasets": DATASETS}
    targets = intervention_targets(config, ["code", "prose"])
    assert targets == {"code": ["code"]}
    items = mixture_interventions(DATASETS, pairs, targets)
    assert [(i["eval_set"], i["aligned_component"]) for i in items] == [("code", "code")]
    text = summary_markdown({"correlation": {}, "interventions": items})
    assert "**code**" in text and "prose" not in text


def test_declared_targets_replace_the_default_and_untargeted_families_are_named():
    config = {"datasets": DATASETS, "interventions": {"news": ["prose"]}}
    targets = intervention_targets(config, ["code", "prose"])
    assert targets == {"news": ["prose"]}
    assert untargeted_families(DATASETS, {}) == [["code", "news"]]
    text = summary_markdown({"correlation": {}, "interventions": [],
                             "untargeted_families": untargeted_families(DATASETS, {})})
    assert "no trend is reported" in text


def test_intervention_losses_follow_the_shares():
    pairs = _pairs({"code": 0.9, "news": 0.5, "mix25": 0.6, "mix75": 0.8})
    points = pd.DataFrame({
        "train_set": ["code", "news", "mix25", "mix75"], "eval_set": ["code"] * 4,
        "cross_entropy": [2.0, 3.0, 2.8, 2.3],
    })
    [item] = mixture_interventions(DATASETS, pairs, {"code": ["code"]}, {"finetune": points})
    assert item["losses"] == {"finetune": [3.0, 2.8, 2.3, 2.0]}
    assert "finetune loss on code: 0.00: 3.000" in summary_markdown({"correlation": {}, "interventions": [item]})


def test_reference_outcome_counts_models_that_beat_the_reference():
    points = pd.DataFrame({
        "train_set": ["a", "b", "c"], "eval_set": ["e"] * 3, "reference": ["base_model"] * 3,
        "reference_cross_entropy": [3.0] * 3, "loss_change": [-0.2, 0.05, -0.01],
    })
    out = reference_outcome(points)["e"]
    assert out["improved"] == 2 and out["models"] == 3
    assert out["best"] == {"train_set": "a", "loss_change": -0.2}
    assert out["worst"] == {"train_set": "b", "loss_change": 0.05}


def _stats(r, lo, hi, clustered, r_low=None, r_high=None):
    return {
        "n": 6, "pearson_r": r, "r_ci_low": lo, "r_ci_high": hi, "pearson_p": 0.01, "r2": r * r,
        "spearman_rho": r, "confidence": 0.95,
        "robustness": {
            "r_loo_min": r - 0.1, "r_loo_max": r + 0.05, "most_influential_point": "x -> e",
            "r_without_most_influential": r + 0.3, "max_cooks_distance": 1.5,
            "clusters": {"clustered": clustered, "between_share": 0.95, "low": ["a", "b", "c"],
                         "high": ["d", "e", "f"], "r_low": r_low, "r_high": r_high},
        },
    }


def test_correlation_reading_names_strength_ci_and_clusters():
    text = "\n".join(correlation_reading("finetune", _stats(-0.9, -0.99, -0.6, True, 0.1, -0.05)))
    assert "a strong correlation" in text and "lower loss" in text
    assert "without the most influential point (x -> e) r=-0.600" in text
    assert "rests on the gap between the clusters" in text
    text = "\n".join(correlation_reading("pretrain", _stats(-0.4, -0.9, 0.3, False)))
    assert "moderate" in text and "not distinguishable from no correlation" in text
    assert "clusters" not in text
    text = "\n".join(correlation_reading("finetune", _stats(-0.9, -0.99, -0.6, True, -0.8, -0.7)))
    assert "also holds within the clusters" in text


def test_a_negligible_correlation_claims_no_direction_and_three_points_no_robustness():
    stats = _stats(0.05, -1.0, 1.0, False)
    stats["n"] = 3
    stats["robustness"].update(r_loo_min=None, r_loo_max=None, r_without_most_influential=None)
    text = "\n".join(correlation_reading("finetune", stats))
    assert "a negligible correlation." in text and "HIGHER" not in text and "lower loss" not in text
    assert "leaving one out leaves too few" in text and "n/a" not in text
