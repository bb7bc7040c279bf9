"""Task2Vec embeddings of one (dataset, split): one per batch."""

from pathlib import Path

from datalign.core.io import provenance
from datalign.core.runner import run_step
from datalign.lm.devices import inference_device
from datalign.lm.models import load_model
from datalign.lm.tokens import TokenizedSplit, sample_segment_batches
from datalign.task2vec import Task2VecConfig, embed_batches, save_embeddings


def main(smk):
    cfg = Task2VecConfig.from_dict(smk.params.task2vec)
    name = f"{smk.wildcards.dataset}/{smk.wildcards.split}"
    split = TokenizedSplit.load(smk.input.tokens, name=name)
    model = load_model(str(Path(smk.input.probe).parent)).to(inference_device())
    batches = sample_segment_batches(
        split, cfg.num_batches, cfg.batch_size, cfg.seq_len, seed=smk.params.seed,
        pad_id=model.config.pad_token_id,
    )
    result = embed_batches(model, batches, cfg, seed=smk.params.seed)
    save_embeddings(result, smk.output.embeddings, smk.output.meta, extra={
        "set": name,
        "num_batches": len(batches),
        "tokens_per_batch": [b.num_tokens for b in batches],
        "provenance": provenance(smk.params.task2vec, seed=smk.params.seed),
    })


run_step(snakemake, main)  # noqa: F821
