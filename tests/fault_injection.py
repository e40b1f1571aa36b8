"""Faults injected into a model's forward pass at a chosen call: an exception, or NaN output."""

import weakref

import torch


def fail_at(monkeypatch, module, call: int, make_error=None, output=None):
    """Make `module.forward` raise make_error() (or return `output(result)`) on model call `call`."""
    original = module.forward
    seen = {"calls": 0, "tensor": None}

    def forward(*args, **kwargs):
        seen["calls"] += 1
        result = original(*args, **kwargs)
        if seen["calls"] == call:
            if output is not None:
                return output(result)
            held = torch.empty(1 << 20)  # what a failing step holds, to see it freed
            seen["tensor"] = weakref.ref(held)
            raise make_error()
        return result

    monkeypatch.setattr(module, "forward", forward)
    return seen


def nan_output(result):
    """The model output with every value NaN, in the form the model returned it."""
    sample = result.sample if hasattr(result, "sample") else result[0]
    poisoned = torch.full_like(sample, float("nan"))
    return type(result)(sample=poisoned) if hasattr(result, "sample") else (poisoned,)
