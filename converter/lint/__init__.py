"""`npuconv lint`: static Ascend-readiness of an ONNX graph (will atc and a 310-class chip take it?)."""

from converter.lint.rules import Finding, LintReport, lint_onnx

__all__ = ["Finding", "LintReport", "lint_onnx"]
