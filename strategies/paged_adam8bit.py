"""`paged_adam8bit`: bitsandbytes' paged 8-bit AdamW; everything else as `adam8bit`.

The optimizer state lives in CUDA unified memory: it stays on the GPU while it fits and pages to host
memory under pressure (and back when the step needs it), so a model whose state would not fit can still
train, slower. Paging needs CUDA's managed memory: there is no CPU path.
"""

from __future__ import annotations

from strategies.adam8bit import Adam8bitStrategy


class PagedAdam8bitStrategy(Adam8bitStrategy):
    name = "paged_adam8bit"
    description = "bitsandbytes paged 8-bit AdamW (state pages to the host under pressure), otherwise as amp"
    runs_on_cpu = False
    experimental = True
    default_sweep = False
    optimizer_class = "PagedAdamW8bit"
    composes_with = frozenset({"act_ckpt", "sel_ckpt", "act_offload"})
