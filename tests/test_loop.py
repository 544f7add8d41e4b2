"""The training loss: answer tokens only, the vocabulary projection only where a learned token
follows, equal to the plain full-logits masked cross-entropy (on tiny random models)."""

from __future__ import annotations

import pytest
from test_targets import tiny_model  # tests/ is on sys.path (pytest rootdir, no package)

from lab.tuning.datasets import IGNORE, Encoded
from lab.tuning.loop import collate, loss, loss_tokens, lr_at, micro_batch, pack


def _batch():
    import torch

    torch.manual_seed(0)
    items = [
        Encoded([5, 6, 7, 8, 9, 10], [IGNORE, IGNORE, IGNORE, 8, 9, 10], 6),
        Encoded([11, 12, 13], [IGNORE, IGNORE, 13], 3),
        Encoded([14, 15, 16, 17], [IGNORE, 15, IGNORE, 17], 4),
    ]
    return collate(items, pad_id=0, device="cpu")


def _full_logits_loss(model, ids, mask, labels):
    import torch

    logits = model(input_ids=ids, attention_mask=mask).logits
    return torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]).float(), labels[:, 1:].reshape(-1), ignore_index=IGNORE
    )


@pytest.mark.parametrize("model_type", ["llama", "phi3", "gemma3_text"])
def test_loss_equals_full_logits_masked_cross_entropy(model_type):
    import torch

    model = tiny_model(model_type).eval()
    ids, labels, mask = _batch()
    assert loss_tokens(labels) == 6
    with torch.no_grad():
        ours, plain = loss(model, ids, mask, labels), _full_logits_loss(model, ids, mask, labels)
    assert ours.item() == pytest.approx(plain.item(), rel=1e-5)


def test_loss_through_peft_and_with_a_softcapped_head():
    import torch
    from peft import LoraConfig, get_peft_model

    from lab.tuning.loop import _decoder_and_head

    model = tiny_model("gemma3_text")
    model.config.final_logit_softcapping = 5.0  # applied after lm_head: needs the model's own forward
    assert _decoder_and_head(model) is None
    ids, labels, mask = _batch()
    with torch.no_grad():
        assert loss(model, ids, mask, labels).item() == pytest.approx(
            _full_logits_loss(model, ids, mask, labels).item(), rel=1e-5
        )
    peft_model = get_peft_model(
        tiny_model("llama"), LoraConfig(r=2, target_modules=["q_proj"], task_type="CAUSAL_LM", init_lora_weights=False)
    )
    assert _decoder_and_head(peft_model) is not None
    value = loss(peft_model, ids, mask, labels)
    value.backward()  # gradients reach the LoRA weights through the decoder + head path
    grads = [p.grad for n, p in peft_model.named_parameters() if "lora_" in n]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)
    with torch.no_grad():
        assert value.item() == pytest.approx(_full_logits_loss(peft_model, ids, mask, labels).item(), rel=1e-5)


def test_batches_are_seeded_and_cover_each_epoch():
    seen = [i for k in range(3) for i in micro_batch(10, 4, seed=1, index=k)]
    assert sorted(seen) == list(range(10))
    assert micro_batch(10, 4, 1, 5) == micro_batch(10, 4, 1, 5) != micro_batch(10, 4, 2, 5)
    blocks = pack([Encoded([1] * 5, [1] * 5, 5)] * 5, max_seq_len=12, seed=0)
    assert [len(b.input_ids) for b in blocks] == [10, 10, 5]


def test_lr_schedule_warms_up_then_decays():
    lrs = [lr_at(s, 10, 2, 1.0) for s in range(10)]
    assert lrs[0] < lrs[1] < lrs[2] == 1.0 and lrs[-1] > 0 and lrs[2:] == sorted(lrs[2:], reverse=True)
