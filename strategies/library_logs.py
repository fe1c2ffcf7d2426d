"""Library log lines that concern no user of the harness, dropped at their source by a logging filter on
the library's own logger (each line matched by its text, so every other line of that logger still shows).

- bitsandbytes/backends/cpu/ops.py:246-255 (0.50.2): on a CPU with AVX512-BF16, importing bitsandbytes
  tries to fetch a 4-bit matmul kernel from the Hugging Face Hub through the optional `kernels` package and
  logs a warning when it cannot. The harness uses bitsandbytes' 8-bit optimizers only, never a 4-bit
  matmul.
- torch/utils/_pytree.py:629-636 (torch 2.13): `register_constant` on an Enum logs a deprecation warning;
  torchao/utils.py:47 (0.18.0) calls it for its enums when it is imported. Nothing a user can act on.
"""

from __future__ import annotations

import logging

DROPPED = {
    "bitsandbytes.backends.cpu.ops": "Failed to load CPU gemm_4bit_forward from kernels-community",
    "torch.utils._pytree": "is an Enum subclass and is now natively supported by torch.compile",
}


class _DropLine(logging.Filter):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


def quiet_library_logs() -> None:
    """Install the filters once (loggers are process-wide; installing twice adds nothing)."""
    for name, text in DROPPED.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropLine) for f in logger.filters):
            logger.addFilter(_DropLine(text))
