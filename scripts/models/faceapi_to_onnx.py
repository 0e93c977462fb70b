#!/usr/bin/env python3
"""Build faceapi-age-gender.onnx from face-api's age/gender model (TF.js weights, MIT).

The npm package @vladmandic/face-api ships this network as a TF.js *weights-only* model:
model/age_gender_model-weights_manifest.json names and shapes every tensor, and
model/age_gender_model.bin holds the values, most of them uint8-quantised. The graph itself
lives in the package's TypeScript (src/xception/TinyXception.ts, src/ageGenderNet/AgeGenderNet.ts).
This script decodes the weights exactly as TF.js does and writes the same graph as ONNX
(opset 13) with the onnx and numpy packages only.

The ONNX model:
  input   images  float32 [N, 3, 112, 112]  RGB, values 0..255, NCHW (an aligned face chip)
  inside  x = (images - mean_rgb(122.782, 117.001, 104.298)) * (1/255)
          TinyXception with 2 middle blocks -> [N, 512, 7, 7]
          AveragePool 7x7 stride 2 (valid)  -> [N, 512]
  output  age     float32 [N, 1]  age in years (linear regression head)
          gender  float32 [N, 2]  softmax; index 0 = male, index 1 = female

TF 'same' padding corresponds to ONNX auto_pad SAME_UPPER (an odd extra pixel of padding goes
to the bottom/right), and both pad max pooling with -inf. A TF separable convolution is a
depthwise Conv (group = channels) followed by a 1x1 Conv, with the bias added after the latter.

Output is deterministic: the same inputs and onnx/numpy versions give the same bytes.

Usage: faceapi_to_onnx.py WEIGHTS_MANIFEST.json WEIGHTS.bin OUT.onnx
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# Per-channel RGB mean subtracted by TinyXception before dividing by 255.
MEAN_RGB = (122.782, 117.001, 104.298)
CHIP_SIZE = 112
MIDDLE_BLOCKS = 2
OPSET = 13
IR_VERSION = 8


def decode_weights(manifest_path: Path, weights_path: Path) -> dict[str, np.ndarray]:
    """Return {tensor name: float32 array in TF layout}, decoded as tfjs-core's decodeWeights.

    Quantised tensors (uint8) are stored as q and decode to q * scale + min, computed in double
    precision and then rounded to float32 (as JavaScript does when filling a Float32Array).
    Unquantised tensors are little-endian float32. Tensors follow each other in manifest order.
    """
    groups = json.loads(manifest_path.read_text(encoding="utf-8"))
    data = weights_path.read_bytes()
    paths = [p for g in groups for p in g["paths"]]
    if len(paths) != 1:
        sys.exit(f"expected a manifest with a single weights file, got {paths}")

    weights: dict[str, np.ndarray] = {}
    offset = 0
    for group in groups:
        for spec in group["weights"]:
            shape = spec["shape"]
            count = int(np.prod(shape)) if shape else 1
            quant = spec.get("quantization")
            if quant:
                if quant["dtype"] != "uint8" or spec["dtype"] != "float32":
                    sys.exit(f"unsupported quantisation for {spec['name']}: {quant}")
                q = np.frombuffer(data, dtype=np.uint8, count=count, offset=offset)
                offset += count
                values = (q.astype(np.float64) * quant["scale"] + quant["min"]).astype(np.float32)
            else:
                if spec["dtype"] != "float32":
                    sys.exit(f"unsupported dtype for {spec['name']}: {spec['dtype']}")
                values = np.frombuffer(data, dtype="<f4", count=count, offset=offset).astype(np.float32)
                offset += 4 * count
            weights[spec["name"]] = values.reshape(shape)
    if offset != len(data):
        sys.exit(f"the manifest describes {offset} bytes but {weights_path} has {len(data)}")
    return weights


class GraphBuilder:
    """Collects ONNX nodes and initialisers; every node has one output, named like the node."""

    def __init__(self, weights: dict[str, np.ndarray]):
        self.weights = weights
        self.unused = set(weights)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def weight(self, name: str) -> np.ndarray:
        self.unused.discard(name)
        return self.weights[name]

    def constant(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(
            numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def relu(self, x: str) -> str:
        return self.node("Relu", [x], f"{x}_relu")

    def conv(self, x: str, prefix: str, stride: int, output: str) -> str:
        """Plain convolution with 'same' padding; TF filters are HWIO, ONNX wants OIHW."""
        filters = self.weight(f"{prefix}/filters").transpose(3, 2, 0, 1)
        bias = self.weight(f"{prefix}/bias")
        return self.node(
            "Conv", [x, self.constant(f"{prefix}/W", filters), self.constant(f"{prefix}/B", bias)],
            output, kernel_shape=list(filters.shape[2:]), strides=[stride, stride],
            auto_pad="SAME_UPPER")

    def separable_conv(self, x: str, prefix: str, output: str) -> str:
        """Depthwise 3x3 (TF [3, 3, C, 1] -> ONNX [C, 1, 3, 3]) then pointwise 1x1 with the bias."""
        depthwise = self.weight(f"{prefix}/depthwise_filter")
        pointwise = self.weight(f"{prefix}/pointwise_filter")
        bias = self.weight(f"{prefix}/bias")
        channels = depthwise.shape[2]
        dw = self.node(
            "Conv", [x, self.constant(f"{prefix}/DW", depthwise.transpose(2, 3, 0, 1))],
            f"{output}_dw", kernel_shape=[3, 3], strides=[1, 1], group=channels,
            auto_pad="SAME_UPPER")
        return self.node(
            "Conv", [dw, self.constant(f"{prefix}/PW", pointwise.transpose(3, 2, 0, 1)),
                     self.constant(f"{prefix}/B", bias)],
            output, kernel_shape=[1, 1], strides=[1, 1])

    def reduction_block(self, x: str, prefix: str, activate_input: bool) -> str:
        """Two separable convs and a 3x3/2 max pool, plus a strided 1x1 conv shortcut."""
        out = self.relu(x) if activate_input else x
        out = self.separable_conv(out, f"{prefix}/separable_conv0", f"{prefix}/sc0")
        out = self.separable_conv(self.relu(out), f"{prefix}/separable_conv1", f"{prefix}/sc1")
        out = self.node("MaxPool", [out], f"{prefix}/pool", kernel_shape=[3, 3], strides=[2, 2],
                        auto_pad="SAME_UPPER")
        shortcut = self.conv(x, f"{prefix}/expansion_conv", 2, f"{prefix}/shortcut")
        return self.node("Add", [out, shortcut], f"{prefix}/out")

    def main_block(self, x: str, prefix: str) -> str:
        """Three ReLU + separable conv steps with an identity shortcut."""
        out = x
        for i in range(3):
            out = self.separable_conv(self.relu(out), f"{prefix}/separable_conv{i}", f"{prefix}/sc{i}")
        return self.node("Add", [out, x], f"{prefix}/out")

    def dense(self, x: str, prefix: str, output: str) -> str:
        """Fully connected layer; TF weights are [in, out], so no transpose is needed."""
        return self.node(
            "Gemm", [x, self.constant(f"{prefix}/W", self.weight(f"{prefix}/weights")),
                     self.constant(f"{prefix}/B", self.weight(f"{prefix}/bias"))],
            output)


def build_model(weights: dict[str, np.ndarray]) -> onnx.ModelProto:
    g = GraphBuilder(weights)

    # Normalisation, inside the graph: (x - mean) * (1/255).
    mean = g.constant("mean_rgb", np.array(MEAN_RGB, np.float32).reshape(1, 3, 1, 1))
    inv_255 = g.constant("inv_255", np.array([1.0 / 255.0], np.float32))
    x = g.node("Sub", ["images", mean], "centred")
    x = g.node("Mul", [x, inv_255], "normalised")

    # TinyXception feature extractor: 112 -> 56 -> 28 -> 14 -> 7.
    x = g.relu(g.conv(x, "entry_flow/conv_in", 2, "conv_in"))
    x = g.reduction_block(x, "entry_flow/reduction_block_0", activate_input=False)
    x = g.reduction_block(x, "entry_flow/reduction_block_1", activate_input=True)
    for i in range(MIDDLE_BLOCKS):
        x = g.main_block(x, f"middle_flow/main_block_{i}")
    x = g.reduction_block(x, "exit_flow/reduction_block", activate_input=True)
    x = g.relu(g.separable_conv(x, "exit_flow/separable_conv", "exit_sep"))

    # Heads: average pool to one 512-vector, then age regression and gender softmax.
    x = g.node("AveragePool", [x], "avg_pool", kernel_shape=[7, 7], strides=[2, 2])
    x = g.node("Flatten", [x], "features", axis=1)
    g.dense(x, "fc/age", "age")
    logits = g.dense(x, "fc/gender", "gender_logits")
    g.node("Softmax", [logits], "gender", axis=1)

    if g.unused:
        sys.exit(f"weights not used by the graph: {sorted(g.unused)}")

    graph = helper.make_graph(
        g.nodes, "faceapi_age_gender",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, CHIP_SIZE, CHIP_SIZE])],
        [helper.make_tensor_value_info("age", TensorProto.FLOAT, ["N", 1]),
         helper.make_tensor_value_info("gender", TensorProto.FLOAT, ["N", 2])],
        g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="audiencelens faceapi_to_onnx.py", producer_version="1")
    model.ir_version = IR_VERSION
    model.doc_string = (
        "face-api age/gender model (npm @vladmandic/face-api, MIT). Input 'images': RGB 0..255, "
        "NCHW, 112x112 aligned face chip; mean subtraction and /255 are inside the graph. "
        "Outputs 'age' [N,1] in years, 'gender' [N,2] softmax with index 0 = male.")
    onnx.checker.check_model(model, full_check=True)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("manifest", type=Path, help="age_gender_model-weights_manifest.json")
    parser.add_argument("weights", type=Path, help="age_gender_model.bin")
    parser.add_argument("output", type=Path, help="ONNX file to write")
    args = parser.parse_args()

    weights = decode_weights(args.manifest, args.weights)
    tiny = np.finfo(np.float32).tiny
    subnormal = sum(int(np.count_nonzero((w != 0) & (np.abs(w) < tiny))) for w in weights.values())
    data = build_model(weights).SerializeToString(deterministic=True)
    args.output.write_bytes(data)
    print(json.dumps({"output": str(args.output), "bytes": len(data),
                      "sha256": hashlib.sha256(data).hexdigest(), "tensors": len(weights),
                      "subnormal_weights": subnormal}))


if __name__ == "__main__":
    main()
