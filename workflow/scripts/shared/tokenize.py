"""Turn every split of one prepared dataset into token ids."""

from pathlib import Path

from datalign.core.io import atomic_path, read_json, write_json
from datalign.core.runner import run_step
from datalign.data import read_split
from datalign.lm.tokenizer import load_tokenizer, tokenize_texts


def main(smk):
    name = smk.wildcards.dataset
    tokenizer = load_tokenizer(str(Path(smk.input.tokenizer).parent))
    summary = {"dataset": name, "splits": {}}
    data_dir = Path(smk.input.splits[0]).parent
    manifest = read_json(data_dir / "manifest.json")["splits"]
    for split_path, out_path in zip(smk.input.splits, smk.output.tokens, strict=True):
        split = Path(split_path).stem
        # A hub dataset given only some splits (e.g. ProofNet: validation and test)
        # has the others empty; a consumer asking for one gets the size error then.
        provided = manifest.get(split, {}).get("provided", True)
        texts = read_split(data_dir, split) if provided else []
        tokens = tokenize_texts(tokenizer, texts, name=f"{name}/{split}")
        with atomic_path(out_path) as tmp:
            tokens.save(tmp)
        chars = sum(len(t) for t in texts)
        summary["splits"][split] = {
            "documents": tokens.num_documents,
            "tokens": tokens.num_tokens,
            "chars_per_token": chars / max(1, tokens.num_tokens),
        }
    write_json(smk.output.summary, summary)


run_step(snakemake, main)  # noqa: F821
