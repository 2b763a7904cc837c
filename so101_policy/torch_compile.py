"""The torch_compile backends: lerobot's own ACT or SmolVLA, its predict_action_chunk compiled by
torch.compile (TorchInductor), in fp32 (`torch_compile`) or bf16 (`torch_compile_bf16`, the weights cast
as torch_bf16 casts them).

On a GPU the compiled parts run as CUDA graphs (what mode "reduce-overhead" turns on), which is what takes eager
PyTorch's kernel-by-kernel launching out of a chunk. Unlike cuda_graph it takes SmolVLA: where lerobot's
code makes a tensor from a Python number, dynamo makes that tensor a constant of the compiled graph,
and where transformers' code waits for the GPU (the boolean-mask indexing in SmolVLM's vision
embeddings), the graph breaks and that operation runs eagerly between two compiled parts.
Compiling takes long (seconds for a tiny model, minutes for a full SmolVLA on a CPU) and happens at
the first chunk (a GPU records its CUDA graphs at the second), which policy_node computes at start-up
(ChunkPredictor.warm_up). Real-time chunking
is refused (backend_names.check_backend_for): its inputs change shape and value every chunk, and each
new one compiled again (13-28 s each for a tiny SmolVLA here), in the middle of an episode.
"""

from __future__ import annotations

import torch

from .backend_names import InferenceBackend
from .torch_bf16 import Bf16Policy


class CompiledPolicy:
    """A lerobot policy whose predict_action_chunk is compiled; everything else is the policy's own."""

    def __init__(self, policy, device: torch.device, backend: InferenceBackend):
        bf16 = backend is InferenceBackend.TORCH_COMPILE_BF16
        self._policy = Bf16Policy(policy, device, backend.value) if bf16 else policy
        self._device = device
        cuda_graphs = device.type == "cuda"
        self.description = f"torch.compile{', bf16' if bf16 else ''}{', CUDA graphs' if cuda_graphs else ''}"
        # triton.cudagraphs is what mode "reduce-overhead" turns on. fallback_random draws random numbers
        # (SmolVLA's flow noise) from torch's own generator, as eager torch does, not Inductor's: a seeded
        # run gives eager's noise.
        options = {"fallback_random": True, **({"triton.cudagraphs": True} if cuda_graphs else {})}
        self._compiled = torch.compile(self._policy.predict_action_chunk, options=options)

    def __getattr__(self, name: str):  # config, reset, select_action...: the policy's own
        return getattr(self._policy, name)

    def predict_action_chunk(self, batch: dict, **kwargs) -> torch.Tensor:
        # As for cuda_graph: lerobot's factory calls (ACT's latent) then make their tensors on the device,
        # not on the CPU with a copy, which would keep the compiled graph off CUDA graphs.
        with torch.device(self._device):
            # In one key order: dynamo guards on it, and observations come with their cameras in any order.
            chunk = self._compiled(dict(sorted(batch.items())), **kwargs)
        # With CUDA graphs the chunk lives in the graphs' memory, which the next chunk overwrites.
        return chunk.clone() if chunk.device.type == "cuda" else chunk
