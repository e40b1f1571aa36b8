"""Sampling: the scheduler registry, pre-flight checks, the pipeline and hand-stepped loops, lockstep comparison."""
