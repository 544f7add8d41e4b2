"""The training loop: seeded batches, the loss on the answer tokens, one optimizer step at a
time (linear warmup then linear decay, gradient clipping), validation loss, and a row in
`training_steps` per step (committed as it is written, so the app draws the curve live)."""

from __future__ import annotations

import math
import random
import resource
import time

from ..store import now
from .checkpoint import save_checkpoint
from .datasets import IGNORE, Encoded
from .run import TrainRun

# ---- data order ---------------------------------------------------------------------------------


def pack(examples: list[Encoded], max_seq_len: int, seed: int) -> list[Encoded]:
    """Concatenate examples (seeded order) into blocks of at most max_seq_len tokens. Attention
    is not masked between the examples of a block: cheaper, and usually harmless for short tasks."""
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    blocks: list[Encoded] = []
    ids: list[int] = []
    labels: list[int] = []
    for i in order:
        e = examples[i]
        if ids and len(ids) + len(e.input_ids) > max_seq_len:
            blocks.append(Encoded(ids, labels, len(ids)))
            ids, labels = [], []
        ids, labels = ids + e.input_ids, labels + e.labels
    if ids:
        blocks.append(Encoded(ids, labels, len(ids)))
    return blocks


def micro_batch(n: int, batch_size: int, seed: int, index: int) -> list[int]:
    """The example indices of global micro-batch `index`: a seeded shuffle per epoch, so a
    resumed run sees exactly the batches the uninterrupted run would have."""
    per_epoch = math.ceil(n / batch_size)
    epoch, pos = divmod(index, per_epoch)
    order = list(range(n))
    random.Random(seed * 100_003 + epoch).shuffle(order)
    return order[pos * batch_size : (pos + 1) * batch_size]


def collate(items: list[Encoded], pad_id: int, device: str):
    import torch

    width = max(len(e.input_ids) for e in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    labels = torch.full((len(items), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for row, e in enumerate(items):
        n = len(e.input_ids)
        ids[row, :n] = torch.tensor(e.input_ids)
        labels[row, :n] = torch.tensor(e.labels)
        mask[row, :n] = 1
    return ids.to(device), labels.to(device), mask.to(device)


def loss_tokens(labels) -> int:
    return int((labels[:, 1:] != IGNORE).sum())  # the model shifts labels by one


def lr_at(step: int, total: int, warmup: int, base: float) -> float:
    """Linear warmup over `warmup` steps, then linear decay towards 0 at `total`."""
    if step < warmup:
        return base * (step + 1) / (warmup + 1)
    return base * max(0.0, (total - step) / max(1, total - warmup))


# ---- the loss -----------------------------------------------------------------------------------

# Config fields that change logits after the vocabulary projection (softcapping, scaling): a model
# with any of them set gets its own full forward, which applies them.
_HEAD_EXTRAS = ("final_logit_softcapping", "logit_scale", "logits_scaling", "output_multiplier_scale")


def _decoder_and_head(model):
    """(decoder, lm_head) of a causal LM (inside PEFT), or None where the model is not the plain
    `model.model` + `lm_head` shape."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    decoder = getattr(base, "model", None)
    head = base.get_output_embeddings() if hasattr(base, "get_output_embeddings") else None
    config = getattr(base, "config", None)
    if decoder is None or head is None or not callable(decoder) or config is None:
        return None
    if any(getattr(config, extra, None) not in (None, 1, 1.0) for extra in _HEAD_EXTRAS):
        return None
    return decoder, head


def loss(model, ids, mask, labels, engine: str = "peft"):
    """Mean cross-entropy over the answer tokens.

    The vocabulary projection (a fifth of a small model's compute, and its biggest activation)
    runs only where a learned token comes next: the decoder gives hidden states, those positions
    are picked, and `lm_head` projects just them. This needs no `logits_to_keep` support from
    transformers. Models of another shape get their full logits; Unsloth computes its own fused loss."""
    import torch

    if engine == "unsloth":
        return model(input_ids=ids, attention_mask=mask, labels=labels).loss
    keep = labels[:, 1:] != IGNORE
    targets = labels[:, 1:][keep]
    parts = _decoder_and_head(model)
    if parts is None:
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1][keep]
    else:
        decoder, head = parts
        hidden = decoder(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
        logits = head(hidden[:, :-1][keep])
    return torch.nn.functional.cross_entropy(logits.float(), targets)


def val_loss(run: TrainRun) -> float | None:
    """Mean loss per answer token over the validation examples."""
    import torch

    val = run.data.val
    if not val:
        return None
    was_training = run.model.training
    run.model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(val), run.config.batch_size):
            ids, labels, mask = collate(val[i : i + run.config.batch_size], run.pad_id, run.device)
            n = loss_tokens(labels)
            if n:
                with run.precision.context(run.device):
                    total += float(loss(run.model, ids, mask, labels, run.engine)) * n
                count += n
    run.model.train(was_training)
    return total / count if count else None


# ---- one step, and the loop ---------------------------------------------------------------------
def validations_left(step: int, total: int, eval_every: int) -> int:
    """The validation passes after step `step`: every `eval_every` steps, and at the last one."""
    if step >= total:
        return 0
    return total // eval_every - step // eval_every + (total % eval_every != 0)


def eta_seconds(run: TrainRun) -> float:
    """The time left: the remaining steps at this session's pace, plus the validation passes
    still to come (the last step's included), each as long as those measured, or, before the
    first, a forward pass over the validation set at a third of a training step's cost."""
    steps = max(1, run.steps_this_session)
    train_s = max(0.0, run.loop_s() - run.val_s) / steps
    if run.val_passes:
        val_each = run.val_s / run.val_passes
    else:
        examples_per_step = run.config.batch_size * run.config.grad_accum
        val_each = train_s * len(run.data.val or []) / examples_per_step / 3
    left = validations_left(run.step, run.total, run.config.eval_every) if run.data.val else 0
    return train_s * (run.total - run.step) + val_each * left


class Peak:
    """Peak memory while training: RSS sampled every step (and the process's own max RSS),
    and torch's peak allocation on CUDA."""

    def __init__(self, device: str):
        import psutil

        self.proc, self.device, self.rss = psutil.Process(), device, 0

    def sample(self) -> None:
        self.rss = max(self.rss, self.proc.memory_info().rss)

    def report(self) -> dict:
        import torch

        self.sample()
        out = {
            "peak_rss_bytes": self.rss,
            "process_max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        }
        if self.device == "cuda":
            out["peak_gpu_bytes"] = int(torch.cuda.max_memory_allocated())
        return out


def _backward(run: TrainRun, value, weight: float) -> None:
    scaler = run.precision.scaler
    (scaler.scale(value * weight) if scaler is not None else value * weight).backward()


def _update(run: TrainRun) -> None:
    """Clip, step and zero; an interrupt inside must not be checkpointed (half-updated weights)."""
    import torch

    scaler = run.precision.scaler
    if scaler is not None:
        scaler.unscale_(run.optimizer)
    torch.nn.utils.clip_grad_norm_(run.params, 1.0)
    run.in_update = True
    if scaler is not None:
        scaler.step(run.optimizer)
        scaler.update()
    else:
        run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)
    run.step += 1
    run.in_update = False


def train_step(run: TrainRun, lr: float) -> tuple[float, int]:
    """One optimizer step over `grad_accum` micro-batches -> (loss per answer token, input tokens)."""
    cfg = run.config
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    micro = [
        collate(
            [
                run.train_set[i]
                for i in micro_batch(len(run.train_set), cfg.batch_size, cfg.seed, run.step * cfg.grad_accum + k)
            ],
            run.pad_id,
            run.device,
        )
        for k in range(cfg.grad_accum)
    ]
    n_step = sum(loss_tokens(labels) for _, labels, _ in micro)
    step_loss, n_input = 0.0, 0
    for ids, labels, mask in micro:
        n = loss_tokens(labels)
        n_input += int(mask.sum())
        if not n:
            continue
        with run.precision.context(run.device):
            value = loss(run.model, ids, mask, labels, run.engine)
        _backward(run, value, n / n_step)
        step_loss += float(value.detach()) * n / n_step
    _update(run)
    return step_loss, n_input


def _record(run: TrainRun, step_loss: float, n_input: int, lr: float, dt: float, bar) -> None:
    """Log the step that just ended: the run's figures, its training_steps row, the bar, on_step."""
    run.tokens_seen += n_input
    run.steps_this_session += 1
    run.peak.sample()
    run.loss = step_loss
    if run.first_loss is None:
        run.first_loss = step_loss
    val = None
    if run.data.val and (run.step % run.config.eval_every == 0 or run.step == run.total):
        t0 = time.perf_counter()
        val = run.val_loss = val_loss(run)
        run.val_s += time.perf_counter() - t0
        run.val_passes += 1
    eta = eta_seconds(run)
    row = {
        "run_id": run.run_id,
        "step": run.step,
        "loss": step_loss,
        "val_loss": val,
        "lr": lr,
        "tokens_per_s": n_input / dt if dt > 0 else None,
        "epoch": run.step / run.steps_per_epoch,
        "eta_s": eta,
        "ts": now(),
    }
    run.lab.store.log_training_step(row)
    bar.set_postfix(
        {
            "loss": f"{step_loss:.3f}",
            "val": "-" if run.val_loss is None else f"{run.val_loss:.3f}",
            "lr": f"{lr:.1e}",
            "tok/s": f"{row['tokens_per_s'] or 0:.0f}",
        },
        refresh=False,
    )
    bar.update(1)
    if run.on_step:
        run.on_step(dict(row, total_steps=run.total))


def run_loop(run: TrainRun) -> None:
    """Train from `run.step` to `run.total`, checkpointing every `save_every` steps."""
    from tqdm.auto import tqdm

    run.peak = run.peak or Peak(run.device)
    run.t_loop = time.perf_counter()
    bar = tqdm(
        total=run.total, initial=run.step, disable=not run.progress, desc=run.name, unit="step", dynamic_ncols=True
    )
    try:
        run.model.train()
        run.model.config.use_cache = False
        while run.step < run.total:
            t0 = time.perf_counter()
            lr = lr_at(run.step, run.total, run.warmup, run.config.learning_rate)
            step_loss, n_input = train_step(run, lr)
            _record(run, step_loss, n_input, lr, time.perf_counter() - t0, bar)
            if run.step % run.config.save_every == 0 and run.step < run.total:
                save_checkpoint(run)
    finally:
        bar.close()
    run.t_loop_end = time.perf_counter()
    run.model.eval()
