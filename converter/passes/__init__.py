"""ONNX rewrite passes (after Olive's passes): each has a name and a typed config, returns the rewritten
model and what it changed; `registry` runs them in order."""
