"""Task2Vec embeddings of (dataset, split) sets: one per batch.

Rule task2vec embeds one set; rule task2vec_group (resources.task2vec.sets_per_job > 1)
embeds several in one process, importing torch and loading the probe once, each
exactly as rule task2vec would (:func:`embed_set`), into the group's folder.
"""

from pathlib import Path

from datalign.core.io import provenance
from datalign.core.runner import run_step
from datalign.lm.devices import inference_device
from datalign.lm.models import load_model
from datalign.lm.tokens import TokenizedSplit, sample_segment_batches
from datalign.task2vec import Task2VecConfig, embed_batches, save_embeddings


def embed_set(model, params, tokens, dataset, split, seed, embeddings, meta):
    """One set's embeddings and sidecar: what depends on the set, its seed and the config only."""
    cfg = Task2VecConfig.from_dict(params)
    name = f"{dataset}/{split}"
    data = TokenizedSplit.load(tokens, name=name)
    batches = sample_segment_batches(
        data, cfg.num_batches, cfg.batch_size, cfg.seq_len, seed=seed,
        pad_id=model.config.pad_token_id,
    )
    result = embed_batches(model, batches, cfg, seed=seed)
    save_embeddings(result, embeddings, meta, extra={
        "set": name,
        "num_batches": len(batches),
        "tokens_per_batch": [b.num_tokens for b in batches],
        "provenance": provenance(params, seed=seed),
    })


def main(smk):
    # embed_batches leaves the model unchanged: one load serves every set of the job.
    model = load_model(str(Path(smk.input.probe).parent)).to(inference_device())
    if smk.rule == "task2vec_group":
        folder = Path(smk.output.group)
        for (dataset, split), seed, tokens in zip(smk.params.sets, smk.params.seeds, smk.input.tokens,
                                                  strict=True):
            embed_set(model, smk.params.task2vec, tokens, dataset, split, seed,
                      folder / dataset / f"{split}.npz", folder / dataset / f"{split}.json")
    else:
        embed_set(model, smk.params.task2vec, smk.input.tokens, smk.wildcards.dataset, smk.wildcards.split,
                  smk.params.seed, smk.output.embeddings, smk.output.meta)


run_step(snakemake, main)  # noqa: F821
