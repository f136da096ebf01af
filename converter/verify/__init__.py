"""Numeric parity: input generation, metrics, reports."""
