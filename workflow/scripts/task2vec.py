"""Task2Vec embeddings of one (dataset, split): one per batch."""

from pathlib import Path

import numpy as np

from datalign.core.io import atomic_path, provenance, write_json
from datalign.training.launch import inference_device
from datalign.lm.models import load_model
from datalign.core.runner import run_step
from datalign.task2vec import Task2VecConfig, embed_batches
from datalign.lm.tokens import TokenizedSplit, sample_segment_batches


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
    with atomic_path(smk.output.embeddings) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, embeddings=result.embeddings)
    meta = dict(result.metadata)
    meta.update({
        "set": name,
        "num_batches": len(batches),
        "tokens_per_batch": [b.num_tokens for b in batches],
        "provenance": provenance(smk.params.task2vec, seed=smk.params.seed),
    })
    write_json(smk.output.meta, meta)


run_step(snakemake, main)  # noqa: F821
