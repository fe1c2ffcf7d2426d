"""The progress protocol between a run's child process and its parent: JSON lines on a pipe whose file
descriptor the parent passes in HARNESS_EVENT_FD. Events: `phase` (setup, fit, warmup, train, eval,
checkpoint, resume), `started` (the result so far), `metric` (a metric row), `message` (a warning for the
user), `result` (the final status)."""

EVENT_FD_ENV = "HARNESS_EVENT_FD"
