"""`npuconv onnx`: Paddle (or any ONNX) to a static, simplified ONNX checked against the source."""
