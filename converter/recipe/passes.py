"""The onnx stage's pass chain, in order: the one list that the recipe (which passes may be switched off),
the registry and the docs all read."""

ONNX_CHAIN = (
    "fix_shapes",                 # the recipe's input shapes, shape inference
    "repairs",                    # paddle2onnx output ONNX Runtime refuses (Where on bool, rank-0 Concat inputs)
    "simplify",                   # onnxsim: constant folding, shape folding, dead code
    "fold_control_flow",          # If with a constant condition, Loop with a constant trip count
    "decoder_split",              # a remaining Loop -> encoder + single-step graphs + host loop
    "int32",                      # int64 -> int32 where CANN wants it and the values fit
    "lower_opset",                # down to onnx.max_opset
    "constants_to_initializers",  # Constant nodes -> initializers
)
# Every pass but the shape fixing may be switched off by name (onnx.disable_passes).
SWITCHABLE = ONNX_CHAIN[1:]
