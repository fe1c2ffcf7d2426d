"""`paged_adam8bit`: bitsandbytes' paged 8-bit AdamW; everything else as `adam8bit`.

The optimizer state lives in CUDA unified memory: it stays on the GPU while it fits and pages to host
memory under pressure (and back when the step needs it), so a model whose state would not fit can still
train, slower. Paging needs CUDA's managed memory: there is no CPU path.

bitsandbytes 0.50.2 makes each paged buffer with cudaMallocManaged (`get_paged`, functional.py:91-99) as a
tensor that does not own its memory, lists it in a process-wide page manager (optim/optimizer.py:389) and
has no call that frees it: a paged buffer lives as long as the process. Each optimizer here therefore
hands its buffers back to a pool when it is reset or torn down, and the next optimizer of this process
that asks for the same shape and dtype (after warm-up, in every fit probe, in the run) takes them from it,
so the process holds one set, not one per optimizer it ever built.
"""

from __future__ import annotations

import torch

from strategies.adam8bit import Adam8bitExecutor

# (shape, dtype) -> paged buffers no optimizer holds now, for the next one to take.
_POOL: dict[tuple[tuple[int, ...], torch.dtype], list[torch.Tensor]] = {}


def pooled(base_class: type) -> type:
    """`base_class` (a bitsandbytes paged optimizer) taking its paged state buffers from the pool."""

    class PooledPagedOptimizer(base_class):
        def get_state_buffer(self, p, dtype=torch.float32):
            key = (tuple(p.shape), dtype)
            if p.device.type == "cpu" or not self.is_paged or not _POOL.get(key):
                buffer = super().get_state_buffer(p, dtype=dtype)
            else:
                import bitsandbytes.functional as F

                buffer = _POOL[key].pop()
                F.fill(buffer, 0)  # as a new buffer starts (optimizer.py:388)
                self.page_mng.paged_tensors.append(buffer)
            if getattr(buffer, "is_paged", False):
                self.__dict__.setdefault("paged_buffers", []).append(buffer)
            return buffer

        def release_paged_buffers(self) -> None:
            """Give this optimizer's paged buffers back to the pool (its state must not be used after)."""
            buffers = self.__dict__.pop("paged_buffers", [])
            ids = {id(b) for b in buffers}
            self.page_mng.paged_tensors[:] = [t for t in self.page_mng.paged_tensors if id(t) not in ids]
            for buffer in buffers:
                _POOL.setdefault((tuple(buffer.shape), buffer.dtype), []).append(buffer)

    PooledPagedOptimizer.__name__ = f"Pooled{base_class.__name__}"
    return PooledPagedOptimizer


class PagedAdam8bitExecutor(Adam8bitExecutor):
    name = "paged_adam8bit"
    description = "bitsandbytes paged 8-bit AdamW (state pages to the host under pressure), otherwise as amp"
    runs_on_cpu = False
    experimental = True
    default_sweep = False
    optimizer_class = "PagedAdamW8bit"
    composes_with = frozenset({"act_ckpt", "sel_ckpt", "act_offload"})

    def optimizer_type(self) -> type:
        return pooled(super().optimizer_type())

    def reset_optimizer_state(self) -> None:
        super().reset_optimizer_state()
        self.optimizer.release_paged_buffers()  # the next step takes the same buffers back, zeroed

    def teardown(self) -> None:
        optimizer = getattr(self, "optimizer", None)
        if optimizer is not None:
            optimizer.state.clear()
            optimizer.release_paged_buffers()
        super().teardown()
