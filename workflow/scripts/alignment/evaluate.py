"""Cross-entropy and perplexity of one model on one evaluation set's held-out tokens."""

from pathlib import Path

from datalign.core.io import provenance, write_json
from datalign.core.runner import run_step
from datalign.lm.devices import inference_device
from datalign.lm.evaluate import evaluate_causal_lm
from datalign.lm.models import load_model
from datalign.lm.tokens import TokenizedSplit, evaluation_chunks
from datalign.studies.alignment.plan import eval_key


def main(smk):
    exp = smk.params.experiment
    # float32 on the job's GPU when it has one: evaluation is cheap next to training,
    # and full precision keeps the reported cross-entropy free of bf16 rounding.
    model = load_model(str(Path(smk.input.model).parent)).to(inference_device())
    split = TokenizedSplit.load(smk.input.tokens, name=eval_key(smk.wildcards.eval_set))
    chunks = evaluation_chunks(split, exp["seq_len"], exp["eval_tokens"])
    result = evaluate_causal_lm(model, chunks, batch_size=exp["batch_size"])
    result.update({
        "setting": smk.wildcards.setting,
        "train_set": smk.wildcards.train_set,
        "eval_set": smk.wildcards.eval_set,
        "provenance": provenance({"seq_len": exp["seq_len"], "eval_tokens": exp["eval_tokens"]}),
    })
    write_json(smk.output.loss, result)


run_step(snakemake, main)  # noqa: F821
