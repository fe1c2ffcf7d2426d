"""A benchmark harness: one fixed GPT recipe under interchangeable single-GPU training strategies."""

__version__ = "0.1.0"
