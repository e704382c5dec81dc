"""Forward-hook dumper: records module outputs of any PyTorch model under their module paths (design.md §3).

Works on the official Step-Audio 2 model as on this reference: hooks see `named_modules()` paths, which are the
checkpoint keys minus `.weight`. Writes a safetensors dump with metadata `steplab.order` (execution order), the file
`steplab compare` reads.
"""
import fnmatch
import json

import torch

from . import safetensors_io


def _returns_scores(module):
    """The Whisper-style encoder attention (official class `MultiHeadAttention`, here too) returns (out, qk): qk, the
    masked pre-softmax scores, is recorded as `<path>.qk`. The LLM attention exposes none (sdpa returns None)."""
    return type(module).__name__ == "MultiHeadAttention"


class ModuleDumper:
    """Context manager: `with ModuleDumper(model, ["encoder.*", "adapter*"]) as d: model(...)`; then `d.save(path)`."""

    def __init__(self, model: torch.nn.Module, capture=None, dtype=torch.float32, exclude=None):
        self.model, self.capture, self.dtype, self.exclude = model, capture, dtype, exclude or []
        self.tensors, self.order, self._handles = {}, [], []

    def wanted(self, name):
        return (self.capture is None or any(fnmatch.fnmatchcase(name, g) for g in self.capture)) \
            and not any(fnmatch.fnmatchcase(name, g) for g in self.exclude)

    def record(self, name, tensor):
        if not self.wanted(name) or not torch.is_tensor(tensor):
            return
        t = tensor.detach().to("cpu")
        if t.is_floating_point():
            t = t.to(self.dtype)
        if name not in self.tensors:
            self.order.append(name)
        self.tensors[name] = t.contiguous().clone()

    def _hook(self, name, scores):
        def hook(module, inputs, out):
            # a module returning a tuple is recorded by its first element (what the next module consumes)
            self.record(name, out[0] if isinstance(out, (tuple, list)) else out)
            if scores and isinstance(out, (tuple, list)) and len(out) > 1:
                self.record(name + ".qk", out[1])
        return hook

    def __enter__(self):
        for name, module in self.model.named_modules():
            if name:
                self._handles.append(module.register_forward_hook(self._hook(name, _returns_scores(module))))
        return self

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def save(self, path, note=""):
        safetensors_io.save_file(self.tensors, path, metadata={"steplab.order": json.dumps(self.order), "steplab.note": note})
