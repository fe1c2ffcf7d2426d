"""Measurement: metric definitions (no torch), resource samplers, NVML, the environment, metric sinks."""
