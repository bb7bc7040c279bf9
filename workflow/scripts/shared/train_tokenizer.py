"""Train the study's byte-level BPE on the training splits (or save a hub tokenizer)."""

import logging
from pathlib import Path

from datalign.core.runner import run_step
from datalign.data import read_split
from datalign.lm.tokenizer import load_tokenizer, train_bpe

log = logging.getLogger("datalign")


def main(smk):
    cfg = smk.params.tokenizer
    out_dir = Path(smk.output.tokenizer).parent
    if cfg["kind"] == "hub":
        from datalign.core.io import atomic_path

        tok = load_tokenizer(cfg["name"])
        with atomic_path(out_dir, is_dir=True) as tmp:
            tok.save_pretrained(tmp)
        return
    texts = []
    for path in smk.input.texts:
        budget = cfg["max_chars_per_dataset"]
        for text in read_split(Path(path).parent, "train"):
            if budget <= 0:
                break
            texts.append(text[:budget])
            budget -= len(text)
        log.info("tokenizer corpus: %s", path)
    train_bpe(texts, vocab_size=cfg["vocab_size"], out_dir=out_dir, max_word_chars=cfg["max_word_chars"])


run_step(snakemake, main)  # noqa: F821
