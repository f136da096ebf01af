"""Small real Paddle decoders that mirror SLANet-plus's head, built at test time: an image encoder, then a
tensor-bounded loop (`for i in range(paddle.to_tensor(N) + 1)`) that writes `buf[:, i, :] = x` into two
write-only buffers and one token history read by `if (ids == eos).any(-1).all(): break`, feeds the argmax
back through one-hot into a GRU cell, recomputes a loop-invariant projection of the encoder output every
step, and ends with `softmax(preds[:, :i+1])`. Variants grow a buffer with `paddle.concat`, or exhibit one
thing the decoder split must refuse.

The eos logit gets a bonus `3 i gate(x) - 4`: a positive-mean input exits after a few steps, a
negative-mean one never emits eos and runs to capacity."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SHAPE = (1, 3, 8, 8)
VOCAB, LOC, HIDDEN, FEAT, MAX_LEN = 6, 4, 16, 8, 9
EOS = VOCAB - 1
CAPACITY = MAX_LEN + 1  # rows in the preallocated buffers and the most steps the loop runs

VARIANTS = ("slanet", "concat", "concat_read", "data_write", "multi_row", "window", "nested", "two_loops")


def inputs() -> dict[str, np.ndarray]:
    """Named inputs: `early` exits on eos after a few steps, `full` runs all CAPACITY steps."""
    rng = np.random.default_rng(0)
    early = rng.uniform(0.2, 1.0, SHAPE).astype(np.float32)
    full = -rng.uniform(0.2, 1.0, SHAPE).astype(np.float32)
    return {"early": early, "full": full}


def make_decoder(variant: str = "slanet"):
    """The `variant` decoder as a dygraph layer in eval mode, seeded weights (also a builder for the export
    stage: `decoder_models:make_decoder`)."""
    import paddle
    import paddle.nn.functional as F
    from paddle import nn

    assert variant in VARIANTS, variant

    class Decoder(nn.Layer):
        def __init__(self) -> None:
            super().__init__()
            self.enc = nn.Conv2D(3, FEAT, 3, stride=2, padding=1)
            self.proj_feat = nn.Linear(FEAT, HIDDEN)  # applied to the encoder output inside the loop
            self.proj_h = nn.Linear(HIDDEN, HIDDEN)
            self.score = nn.Linear(HIDDEN, 1)
            self.cell = nn.GRUCell(FEAT + VOCAB, HIDDEN)
            self.gen = nn.Linear(HIDDEN, VOCAB)
            self.loc = nn.Linear(HIDDEN, LOC)
            self.eos_hot = paddle.to_tensor(np.eye(VOCAB, dtype=np.float32)[EOS])

        def attend(self, feats, h):
            proj = self.proj_feat(feats)  # loop-invariant: the split hoists it into the encoder
            att = F.softmax(self.score(paddle.tanh(proj + self.proj_h(h).unsqueeze(1))), axis=1)
            return paddle.matmul(att.transpose([0, 2, 1]), feats).squeeze(1)

        def step(self, feats, h, pre, i, gate):
            ctx = self.attend(feats, h)
            h, _ = self.cell(paddle.concat([ctx, F.one_hot(pre, VOCAB)], axis=1), h)
            step = paddle.to_tensor(i) if isinstance(i, int) else i  # an int in dygraph, a tensor in static
            bonus = paddle.cast(step, "float32") * gate * 3.0 - 4.0
            logits = self.gen(h) + bonus * self.eos_hot
            return h, logits, F.sigmoid(self.loc(h))

        def forward(self, x):
            feats = paddle.nn.functional.relu(self.enc(x)).flatten(2).transpose([0, 2, 1])  # [N, L, FEAT]
            n = feats.shape[0]
            gate = paddle.tanh(x.sum(axis=[1, 2, 3]).unsqueeze(1) * 0.05)  # [N, 1], about +-1: the input's sign
            h = paddle.zeros([n, HIDDEN])
            pre = paddle.zeros([n], dtype="int32")
            ids = paddle.zeros([n, CAPACITY], dtype="int32")
            locs = paddle.zeros([n, CAPACITY, LOC])
            if variant in ("concat", "concat_read"):
                grown = paddle.zeros([n, 1, VOCAB])
            else:  # multi_row writes rows i and i + 1: one spare row
                preds = paddle.zeros([n, CAPACITY + (variant == "multi_row"), VOCAB])
            if variant == "window":
                hist = paddle.zeros([n, CAPACITY, HIDDEN])
            if variant == "two_loops":  # a trip count from data: fold_control_flow cannot unroll it
                for j in range(paddle.cast(x.sum() > 0, "int64") + 1):
                    h = h + 0.1 * self.proj_h(h)
            max_len = paddle.to_tensor(MAX_LEN)
            for i in range(max_len + 1):
                if variant == "nested":  # a trip count from data: fold_control_flow cannot unroll it
                    for _ in range(paddle.cast(pre[0] % 2, "int64") + 1):
                        h = paddle.tanh(self.proj_h(h))
                if variant == "concat_read":
                    h = h + grown.sum(1)[:, :1] * 0.1  # attention-like read of the grown history
                h, logits, loc = self.step(feats, h, pre, i, gate)
                if variant == "window":
                    hist[:, i, :] = h
                    h = h + hist[:, : i + 1].sum(1) * 0.1  # a tensor whose shape changes every step
                if variant in ("concat", "concat_read"):
                    grown = paddle.concat([grown, logits.unsqueeze(1)], axis=1)
                elif variant == "multi_row":
                    preds[:, i : i + 2, :] = paddle.stack([logits, logits], axis=1)
                else:
                    preds[:, i, :] = logits
                pre = paddle.argmax(logits, axis=1).astype("int32")
                if variant == "data_write":
                    locs[:, pre[0], :] = loc
                else:
                    locs[:, i, :] = loc
                ids[:, i] = pre
                if (ids == EOS).any(-1).all():
                    break
            if variant in ("concat", "concat_read"):
                return locs[:, : i + 1], F.softmax(grown, axis=-1)
            return locs[:, : i + 1], F.softmax(preds[:, : i + 1], axis=-1)

    paddle.seed(0)
    # a name scope of its own: Paddle's global parameter counter (linear_N) stays as other tests expect it
    with paddle.utils.unique_name.guard():
        layer = Decoder()
        with paddle.no_grad():  # weights scaled so logits are O(1): argmax is never a near-tie
            for p in layer.parameters():
                p.set_value(p.numpy() * 1.5)
    layer.eval()
    return layer


def build(variant: str, out_dir: Path) -> Path:
    """Save the `variant` decoder with paddle.jit.save under out_dir (inference.json + .pdiparams)."""
    import paddle

    layer = make_decoder(variant)
    with paddle.utils.unique_name.guard():
        static = paddle.jit.to_static(layer, input_spec=[paddle.static.InputSpec([None, 3, 8, 8], "float32", "x")],
                                      full_graph=True)
        out_dir.mkdir(parents=True, exist_ok=True)
        paddle.jit.save(static, str(out_dir / "inference"))
    return out_dir


def build_onnx(variant: str, out_dir: Path) -> tuple[Path, Path]:
    """(Paddle model dir, raw paddle2onnx ONNX) of `variant` under out_dir, both made in a child process:
    paddle.jit.save of the nested loop and paddle2onnx have crashed long-lived pytest workers outright
    (twice in CI, never alone), and a child that crashes fails this one fixture with its stderr instead."""
    import subprocess
    import sys

    model_dir, raw = out_dir / variant, out_dir / f"{variant}.onnx"
    done = subprocess.run([sys.executable, __file__, variant, str(model_dir), str(raw)],
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0 or not raw.is_file():
        raise RuntimeError(f"building the {variant} decoder failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return model_dir, raw


if __name__ == "__main__":  # build_onnx's child: VARIANT MODEL_DIR ONNX_FILE
    import sys

    from converter.stages.paddle_worker import export

    variant, model_dir, save_file = sys.argv[1:4]
    build(variant, Path(model_dir))
    export({"model_file": f"{model_dir}/inference.json", "params_file": f"{model_dir}/inference.pdiparams",
            "save_file": save_file, "opset": 11})
