"""The reference of one setting's losses on one evaluation set (plan.baseline_reference):
the untuned base model (finetune) or the evaluation set's unigram model (pretrain),
scored on the same held-out chunks as every trained model."""

from pathlib import Path

from datalign.core.io import provenance, write_json
from datalign.core.runner import run_step
from datalign.lm.evaluate import stream_token_counts, unigram_cross_entropy
from datalign.lm.tokens import TokenizedSplit, evaluation_chunks
from datalign.studies.alignment.plan import eval_key


def base_model_loss(smk, chunks, name):
    from datalign.lm.devices import inference_device
    from datalign.lm.evaluate import evaluate_causal_lm
    from datalign.lm.models import load_model

    base = str(Path(smk.input.base).parent) if hasattr(smk.input, "base") else smk.params.reference["base"]
    # float32 like the evaluate rule, so the difference is the fine-tuning's, not the dtype's.
    model = load_model(base).to(inference_device())
    return evaluate_causal_lm(model, chunks, batch_size=smk.params.experiment["batch_size"], name=name)


def unigram_loss(smk, chunks, name):
    from datalign.lm.tokenizer import load_tokenizer

    vocab = len(load_tokenizer(str(Path(smk.input.tokenizer).parent)))
    train = TokenizedSplit.load(smk.input.train_tokens, name=f"{smk.wildcards.eval_set}/train")
    counts = stream_token_counts(train, vocab)
    return unigram_cross_entropy(counts, chunks, smoothing=smk.params.reference["smoothing"], name=name)


def main(smk):
    exp, reference = smk.params.experiment, smk.params.reference
    name = eval_key(smk.wildcards.eval_set)
    split = TokenizedSplit.load(smk.input.tokens, name=name)
    chunks = evaluation_chunks(split, exp["seq_len"], exp["eval_tokens"])
    if reference["kind"] == "base_model":
        result = base_model_loss(smk, chunks, name)
    else:
        result = unigram_loss(smk, chunks, name)
    result.update({
        "setting": smk.wildcards.setting,
        "eval_set": smk.wildcards.eval_set,
        "reference": reference["kind"],
        "description": (
            f"the base model ({reference['base']}) before fine-tuning" if reference["kind"] == "base_model"
            else f"the unigram model of {smk.wildcards.eval_set}'s train split (add-{reference['smoothing']:g})"
        ),
        "provenance": provenance({"seq_len": exp["seq_len"], "eval_tokens": exp["eval_tokens"], **reference}),
    })
    write_json(smk.output.loss, result)


run_step(snakemake, main)  # noqa: F821
