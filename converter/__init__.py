"""npuconv: PaddlePaddle models to Ascend NPU OM files, one YAML recipe per model."""

__version__ = "0.1.0"
