"""The cuda_graph backends: lerobot's own ACT, its forward pass recorded once as a CUDA graph and replayed
for every chunk, in fp32 (`cuda_graph`) or bf16 (`cuda_graph_bf16`, the weights cast as torch_bf16 casts them).

On an H200, eager ACT took 13.2 ms from observation to chunk for 11.5 GFLOP, which the GPU's matrix
units compute in well under a millisecond; the rest is overhead, much of it Python launching kernels
one at a time (not profiled yet). A graph launches the same kernels with one call. What recording
needs, and how it is met here:
- Every tensor of the forward pass on the GPU. lerobot's ACT makes its zero latent on the CPU and copies
  it over at every call (modeling_act.py); a host-to-device copy ends a recording. The forward pass runs
  under `torch.device(device)`, so lerobot's factory calls make their tensors on the GPU instead.
- No host synchronisation and fixed shapes: ACT has neither data-dependent shapes nor `.item()`.
- Fixed addresses: each observation is copied into the tensors the graph reads, and each chunk copied
  out of the tensor it writes.
test_cuda_graph.py checks the first two on a CPU by running `forward_on_device` on fake CUDA tensors;
the copies and the replay are checked on a GPU (benchmarks/gpu.sh, bench_backends.py --check).

SmolVLA is refused (backend_names.check_backend_for): transformers' SmolVLM vision embeddings index
with a boolean mask and test it with `.all()`, both of which wait for the GPU, and lerobot's
embed_prefix and Euler loop copy Python numbers to the GPU (`torch.tensor(x, device=...)`); a
recording forbids both.
"""

from __future__ import annotations

import torch

from .backend_names import InferenceBackend
from .checkpoint import CheckpointError
from .torch_bf16 import Bf16Policy

WARM_UP_CALLS = 3  # on a side stream before recording, as torch's CUDA graph notes ask (lazy inits, cuDNN)


def forward_on_device(policy, batch: dict, device: torch.device) -> torch.Tensor:
    """lerobot's predict_action_chunk with every tensor it makes on `device`: what the graph records."""
    with torch.device(device):
        return policy.predict_action_chunk(batch)


class CudaGraphPolicy:
    """A lerobot ACT whose predict_action_chunk replays a CUDA graph; everything else is the policy's own.

    The graph is recorded at the first chunk, from that batch's tensors (their keys, shapes and dtypes);
    every later batch must match them, as frames of one camera setup do.
    """

    def __init__(self, policy, device: torch.device, backend: InferenceBackend):
        if device.type != "cuda":
            raise CheckpointError(f"backend {backend.value} needs a CUDA GPU (device:=cuda), this is {device.type}: "
                                  "on a CPU use openvino_bf16 (or torch)")
        bf16 = backend is InferenceBackend.CUDA_GRAPH_BF16
        self._policy = Bf16Policy(policy, device, backend.value) if bf16 else policy
        self._device = device
        self.description = f"torch, {'bf16, ' if bf16 else ''}CUDA graph"
        self._graph: torch.cuda.CUDAGraph | None = None
        self._inputs: dict[str, torch.Tensor] = {}
        self._chunk: torch.Tensor | None = None

    def __getattr__(self, name: str):  # config, reset, select_action...: the policy's own
        return getattr(self._policy, name)

    def predict_action_chunk(self, batch: dict) -> torch.Tensor:
        if self._graph is None:
            self._record(batch)
        else:
            self._copy_in(batch)
        self._graph.replay()
        return self._chunk.clone()  # the next replay overwrites the graph's own output

    def _record(self, batch: dict) -> None:
        self._inputs = {key: value.clone() for key, value in batch.items() if isinstance(value, torch.Tensor)}
        recorded_batch = {**batch, **self._inputs}  # the rest (task, robot type) as the first batch had it
        side_stream = torch.cuda.Stream(self._device)
        side_stream.wait_stream(torch.cuda.current_stream(self._device))
        with torch.cuda.stream(side_stream):
            for _ in range(WARM_UP_CALLS):
                forward_on_device(self._policy, recorded_batch, self._device)
        torch.cuda.current_stream(self._device).wait_stream(side_stream)
        self._graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self._graph):
            self._chunk = forward_on_device(self._policy, recorded_batch, self._device)

    def _copy_in(self, batch: dict) -> None:
        for key, recorded in self._inputs.items():
            value = batch.get(key)
            if not isinstance(value, torch.Tensor) or value.shape != recorded.shape or value.dtype != recorded.dtype:
                found = (f"{tuple(value.shape)} {value.dtype}" if isinstance(value, torch.Tensor)
                         else "none" if value is None else type(value).__name__)
                raise ValueError(f"the CUDA graph was recorded for {key} of {tuple(recorded.shape)} {recorded.dtype}; "
                                 f"this observation has {found}. Every observation must have the first one's shapes.")
            recorded.copy_(value)
