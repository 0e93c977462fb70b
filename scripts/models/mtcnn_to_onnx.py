#!/usr/bin/env python3
"""Build mtcnn-onet.onnx / mtcnn-rnet.onnx from facenet-pytorch's MTCNN weights (MIT).

The PyPI wheel facenet-pytorch ships the MTCNN networks as PyTorch state dicts
(facenet_pytorch/data/onet.pt, rnet.pt) and defines them in facenet_pytorch/models/mtcnn.py.
This script needs neither torch nor any code from the wheel: the .pt files use torch's legacy
(non-zip) serialisation, a few pickles followed by the raw little-endian tensor storages, and are
read here with a restricted unpickler that accepts only the handful of globals a state dict
needs. The networks are then written as ONNX (opset 13) with the onnx and numpy packages.

Both models take float32 NCHW RGB input already normalised as facenet-pytorch does,
(pixel - 127.5) / 128, i.e. values in about [-1, 1]; that normalisation is NOT in the graph.

  O-Net  input  images     [N, 3, 48, 48]
         conv3x3(32) PReLU maxpool3/2 | conv3x3(64) PReLU maxpool3/2 | conv3x3(64) PReLU
         maxpool2/2 | conv2x2(128) PReLU | permute(0, 3, 2, 1) + flatten | fc(256) PReLU
         output prob       [N, 2]   softmax; index 1 = face
                box        [N, 4]   box regression (dx1, dy1, dx2, dy2) in units of the box size
                landmarks  [N, 10]  x1..x5 then y1..y5, as fractions of the box width/height
                                    from its top-left corner
  R-Net  input  images     [N, 3, 24, 24]
         conv3x3(28) PReLU maxpool3/2 | conv3x3(48) PReLU maxpool3/2 | conv2x2(64) PReLU
         permute(0, 3, 2, 1) + flatten | fc(128) PReLU
         output prob [N, 2] (index 1 = face), box [N, 4]

Max pooling uses ceil_mode like torch's MaxPool2d(ceil_mode=True); with no padding the
ONNX and torch output sizes agree. The permute before flattening reproduces the order in which
the fully connected weights were trained (they come from a TensorFlow port).

Output is deterministic: the same inputs and onnx/numpy versions give the same bytes.

Usage: mtcnn_to_onnx.py {onet,rnet} NET.pt OUT.onnx
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import pickle
import struct
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13
IR_VERSION = 8

# Header of torch's legacy serialisation format (torch/serialization.py).
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
STORAGE_DTYPES = {"FloatStorage": np.dtype("<f4")}


# ---- reading a legacy torch state dict without torch ---------------------------------------

class _Storage:
    """A typed storage; its data is filled in after the main pickle has been read."""

    def __init__(self, dtype: np.dtype, numel: int):
        self.dtype, self.numel = dtype, numel
        self.data: np.ndarray | None = None


class _TensorRef:
    """What torch._utils._rebuild_tensor_v2 would have built: a strided view of a storage."""

    def __init__(self, storage: _Storage, offset: int, size, stride):
        self.storage, self.offset = storage, int(offset)
        self.size, self.stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)

    def to_numpy(self) -> np.ndarray:
        data = self.storage.data
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride) if n > 0)
        if self.offset < 0 or last >= data.size:
            raise ValueError("tensor view outside its storage")
        view = np.lib.stride_tricks.as_strided(
            data[self.offset:], shape=self.size,
            strides=[s * data.itemsize for s in self.stride], writeable=False)
        return np.ascontiguousarray(view, dtype=np.float32)


def _rebuild_tensor_v2(storage, offset, size, stride, *_requires_grad_hooks_metadata):
    return _TensorRef(storage, offset, size, stride)


class _StateDictUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals of a plain float32 state dict."""

    def __init__(self, file, storages: dict[str, _Storage]):
        super().__init__(file)
        self.storages = storages

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return STORAGE_DTYPES[name]
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")

    def persistent_load(self, pid):
        # ('storage', storage type, key, location, numel[, view metadata])
        if not isinstance(pid, tuple) or pid[0] != "storage":
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        _, dtype, key, _location, numel = pid[:5]
        if len(pid) > 5 and pid[5] is not None:
            raise pickle.UnpicklingError("storage views are not supported")
        if key not in self.storages:
            self.storages[key] = _Storage(dtype, int(numel))
        return self.storages[key]


def load_legacy_state_dict(raw: bytes) -> dict[str, np.ndarray]:
    f = io.BytesIO(raw)
    header = _StateDictUnpickler(f, {})
    if header.load() != LEGACY_MAGIC:
        sys.exit("not a legacy torch file (bad magic number)")
    if header.load() != LEGACY_PROTOCOL:
        sys.exit("unsupported legacy torch protocol version")
    sys_info = header.load()
    if not sys_info.get("little_endian", False):
        sys.exit("big-endian torch files are not supported")

    storages: dict[str, _Storage] = {}
    state = _StateDictUnpickler(f, storages).load()
    keys = _StateDictUnpickler(f, {}).load()
    # Each storage follows in the order of `keys`: an int64 element count, then the data.
    for key in keys:
        storage = storages[key]
        (numel,) = struct.unpack("<q", f.read(8))
        if numel != storage.numel:
            sys.exit(f"storage {key}: {numel} elements, expected {storage.numel}")
        nbytes = numel * storage.dtype.itemsize
        buf = f.read(nbytes)
        if len(buf) != nbytes:
            sys.exit(f"storage {key} is truncated")
        storage.data = np.frombuffer(buf, dtype=storage.dtype)
    if f.read():
        sys.exit("trailing bytes after the last storage")
    if not isinstance(state, OrderedDict):
        sys.exit("the file does not hold a state dict")
    return {name: ref.to_numpy() for name, ref in state.items()}


# ---- building the ONNX graphs ----------------------------------------------------------------

# (input size, [(conv, prelu, pool kernel or None)], dense, prelu, [(head layer, output name)])
NETS = {
    "onet": (48,
             [("conv1", "prelu1", 3), ("conv2", "prelu2", 3), ("conv3", "prelu3", 2),
              ("conv4", "prelu4", None)],
             "dense5", "prelu5",
             [("dense6_1", "prob"), ("dense6_2", "box"), ("dense6_3", "landmarks")]),
    "rnet": (24,
             [("conv1", "prelu1", 3), ("conv2", "prelu2", 3), ("conv3", "prelu3", None)],
             "dense4", "prelu4",
             [("dense5_1", "prob"), ("dense5_2", "box")]),
}


def build_model(weights: dict[str, np.ndarray], net: str) -> onnx.ModelProto:
    size, conv_layers, dense, dense_prelu, heads = NETS[net]
    nodes: list[onnx.NodeProto] = []
    initializers: list[onnx.TensorProto] = []
    unused = set(weights)

    def weight(name: str) -> np.ndarray:
        unused.discard(name)
        return weights[name]

    def constant(name: str, array: np.ndarray) -> str:
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(array, np.float32), name))
        return name

    def node(op: str, inputs: list[str], output: str, **attrs) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def prelu(x: str, layer: str, per_channel_map: bool) -> str:
        # One slope per channel; on NCHW maps it must broadcast as [C, 1, 1].
        slope = weight(f"{layer}.weight")
        if per_channel_map:
            slope = slope.reshape(-1, 1, 1)
        return node("PRelu", [x, constant(f"{layer}.slope", slope)], layer)

    def linear(x: str, layer: str, output: str) -> str:
        # torch Linear weights are [out, in]: y = x W^T + b.
        return node("Gemm", [x, constant(f"{layer}.W", weight(f"{layer}.weight")),
                             constant(f"{layer}.B", weight(f"{layer}.bias"))], output, transB=1)

    x = "images"
    for conv, act, pool in conv_layers:
        kernel = weight(f"{conv}.weight")
        x = node("Conv", [x, constant(f"{conv}.W", kernel), constant(f"{conv}.B", weight(f"{conv}.bias"))],
                 conv, kernel_shape=list(kernel.shape[2:]))
        x = prelu(x, act, per_channel_map=True)
        if pool is not None:
            x = node("MaxPool", [x], f"{conv}_pool", kernel_shape=[pool, pool], strides=[2, 2],
                     ceil_mode=1)
    x = node("Transpose", [x], "permuted", perm=[0, 3, 2, 1])
    x = node("Flatten", [x], "flat", axis=1)
    x = prelu(linear(x, dense, dense), dense_prelu, per_channel_map=False)

    outputs = []
    for layer, name in heads:
        if name == "prob":
            node("Softmax", [linear(x, layer, f"{layer}_logits")], name, axis=1)
        else:
            linear(x, layer, name)
        width = int(weights[f"{layer}.bias"].shape[0])
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", width]))

    if unused:
        sys.exit(f"weights not used by the graph: {sorted(unused)}")

    graph = helper.make_graph(
        nodes, f"mtcnn_{net}",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, size, size])],
        outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="audiencelens mtcnn_to_onnx.py", producer_version="1")
    model.ir_version = IR_VERSION
    model.doc_string = (
        f"MTCNN {'O' if net == 'onet' else 'R'}-Net (PyPI facenet-pytorch, MIT). Input 'images': "
        f"RGB, NCHW, {size}x{size}, normalised outside the graph as (pixel - 127.5) / 128. "
        "Output 'prob' [N,2] softmax with index 1 = face.")
    onnx.checker.check_model(model, full_check=True)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("net", choices=sorted(NETS), help="which network the .pt file holds")
    parser.add_argument("state_dict", type=Path, help="facenet_pytorch/data/onet.pt or rnet.pt")
    parser.add_argument("output", type=Path, help="ONNX file to write")
    args = parser.parse_args()

    weights = load_legacy_state_dict(args.state_dict.read_bytes())
    data = build_model(weights, args.net).SerializeToString(deterministic=True)
    args.output.write_bytes(data)
    print(json.dumps({"output": str(args.output), "bytes": len(data),
                      "sha256": hashlib.sha256(data).hexdigest(), "tensors": len(weights)}))


if __name__ == "__main__":
    main()
