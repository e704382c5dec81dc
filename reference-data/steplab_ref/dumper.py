"""Forward-hook dumper: records module outputs of any PyTorch model under their module paths (design.md §3).

Works on the official Step-Audio 2 model as on this reference: hooks see `named_modules()` paths, which are the
checkpoint keys minus `.weight`. Writes a safetensors dump with metadata `steplab.order` (execution order), the file
`steplab compare` reads.
"""
import fnmatch
import json

import torch

from . import safetensors_io


def _has_side_channel(module):
    """A module with a `capture(name, tensor)` slot and a `path` (steplab_ref's MultiHeadAttention); official modules have none."""
    return hasattr(module, "capture") and hasattr(module, "path")


class ModuleDumper:
    """Context manager: `with ModuleDumper(model, ["encoder.*", "adapter*"]) as d: model(...)`; then `d.save(path)`."""

    def __init__(self, model: torch.nn.Module, capture=None, dtype=torch.float32):
        self.model, self.capture, self.dtype = model, capture, dtype
        self.tensors, self.order, self._handles, self._side_channels = {}, [], [], []

    def wanted(self, name):
        return self.capture is None or any(fnmatch.fnmatchcase(name, g) for g in self.capture)

    def record(self, name, tensor):
        if not self.wanted(name) or not torch.is_tensor(tensor):
            return
        t = tensor.detach().to("cpu")
        if t.is_floating_point():
            t = t.to(self.dtype)
        if name not in self.tensors:
            self.order.append(name)
        self.tensors[name] = t.contiguous().clone()

    def __enter__(self):
        for name, module in self.model.named_modules():
            if name:
                if _has_side_channel(module):
                    # attention scores are not a module output; this reference's attention reports them as `<path>.qk`
                    module.capture, module.path = self.record, name
                    self._side_channels.append(module)
                self._handles.append(module.register_forward_hook(
                    lambda mod, inp, out, name=name: self.record(name, out[0] if isinstance(out, (tuple, list)) else out)))
        return self

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        self._handles.clear()
        for module in self._side_channels:
            module.capture = None
        self._side_channels.clear()

    def save(self, path, note=""):
        safetensors_io.save_file(self.tensors, path, metadata={"steplab.order": json.dumps(self.order), "steplab.note": note})
