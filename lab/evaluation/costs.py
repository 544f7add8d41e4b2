"""What a rung costs: per 1,000 requests, to train, and when tuning pays for itself.

Two bases, chosen by the task's `[cost]` table:
- tokens: an API's prices per 1,000 prompt and completion tokens (when either is set);
- time: measured local seconds per request x what an hour of the machine costs.
The guide's argument for tuning (docs/guide.md) is "shorter prompts on every request pay for the training";
`break_even` turns that into a number of requests (and days at the task's request rate).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class RequestCost:
    per_1k: float  # cost of 1,000 requests, in the task's currency
    basis: str  # "tokens" or "time"

    def as_dict(self) -> dict:
        return asdict(self)


def _get(cost: Any, name: str, default: float = 0.0) -> float:
    if cost is None:
        return default
    value = cost.get(name) if isinstance(cost, dict) else getattr(cost, name, None)
    return default if value is None else float(value)


def hour_price(cost: Any, device: str | None) -> float:
    """An hour of the device the work ran on: a GPU hour for cuda/mps, else a CPU hour."""
    gpu = (device or "cpu").lower().startswith(("cuda", "gpu", "mps"))
    return _get(cost, "gpu_hour_price", 1.20) if gpu else _get(cost, "cpu_hour_price", 0.05)


def per_1k_requests(
    cost: Any,
    prompt_tokens: float | None,
    completion_tokens: float | None,
    seconds: float | None,
    device: str | None = "cpu",
) -> RequestCost | None:
    """Cost of 1,000 requests with these mean tokens (or mean seconds) per request."""
    pp = _get(cost, "price_per_1k_prompt_tokens")
    pc = _get(cost, "price_per_1k_completion_tokens")
    if (pp or pc) and prompt_tokens is not None:
        per_request = (prompt_tokens * pp + (completion_tokens or 0) * pc) / 1000
        return RequestCost(per_request * 1000, "tokens")
    if seconds is None:
        return None
    return RequestCost(seconds / 3600 * hour_price(cost, device) * 1000, "time")


def training_cost(cost: Any, wall_s: float | None, device: str | None) -> float | None:
    """A training run's wall time x the hour price of its device."""
    if wall_s is None:
        return None
    return wall_s / 3600 * hour_price(cost, device)


@dataclass
class BreakEven:
    requests: float | None  # None: the tuned arm is not cheaper per request, so never
    days: float | None  # at the task's requests_per_day
    saving_per_1k: float  # baseline cost - tuned cost, per 1,000 requests
    baseline: str  # the arm tuning is compared with

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        if self.requests is None:
            return f"never (not cheaper per request than {self.baseline})"
        days = f", {self.days:.1f} days at the task's rate" if self.days is not None else ""
        return f"{self.requests:,.0f} requests vs {self.baseline}{days}"


def break_even(
    cost: Any,
    training: float | None,
    baseline_per_1k: float | None,
    tuned_per_1k: float | None,
    baseline: str = "few-shot",
) -> BreakEven | None:
    """Requests after which a tuned arm's cheaper requests have paid for its training."""
    if training is None or baseline_per_1k is None or tuned_per_1k is None:
        return None
    saving = baseline_per_1k - tuned_per_1k
    if saving <= 0:
        return BreakEven(None, None, saving, baseline)
    requests = training / (saving / 1000)
    per_day = _get(cost, "requests_per_day")
    return BreakEven(requests, requests / per_day if per_day else None, saving, baseline)
