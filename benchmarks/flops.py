"""Counts the dense FLOPs (matmul, einsum, convolution) of a traced graph.

The count walks a `tf.function`'s graph and every function it calls
(`PartitionedCall`, `If`, `While` bodies times their trip count), keeps only
the ops that the outputs depend on (Keras' RNN traces one step outside its
loop for shapes, which the runtime prunes), and adds per op:

  MatMul, BatchMatMul   2 * M * K * N (times the broadcast batch)
  Einsum                2 * product of every index's size (two operands)
  Conv2D, Depthwise     2 * output elements * kh * kw * input channels per
                        filter
  Conv2DBackpropInput   2 * input elements * kh * kw * output channels (the
                        forward pass of a transposed convolution)

Element-wise ops, reductions and softmaxes are not counted: the figure is
compared with the dense matmul and convolution throughput of the machine.
Here rather than in the library: it reads `tf.Graph` internals
(`_get_function`) that only a benchmark may depend on.
"""

import collections

import numpy as np

DENSE_OPS = (
    "MatMul",
    "BatchMatMul",
    "BatchMatMulV2",
    "BatchMatMulV3",
    "Einsum",
    "Conv2D",
    "DepthwiseConv2dNative",
    "Conv2DBackpropInput",
)
_CALL_OPS = ("PartitionedCall", "StatefulPartitionedCall")
_IF_OPS = ("If", "StatelessIf")
_WHILE_OPS = ("While", "StatelessWhile")


class FlopCount:
    """Dense FLOPs of a graph: the total, per op type, and what could not be
    counted (ops with unknown shapes, loops with an unknown trip count)."""

    def __init__(self):
        self.by_type = collections.Counter()
        self.uncounted = collections.Counter()

    @property
    def total(self):
        return int(sum(self.by_type.values()))

    def as_dict(self):
        return {
            "dense_flops": self.total,
            "by_op_type": dict(sorted(self.by_type.items())),
            "uncounted": dict(sorted(self.uncounted.items())),
        }


def _dims(tensor):
    shape = tensor.shape
    if shape.rank is None or not shape.is_fully_defined():
        return None
    return [int(d) for d in shape]


def _matmul_flops(op):
    a, b = _dims(op.inputs[0]), _dims(op.inputs[1])
    if a is None or b is None:
        return None
    if op.type == "MatMul":
        transpose_a = op.get_attr("transpose_a")
        transpose_b = op.get_attr("transpose_b")
        batch = 1
    else:
        transpose_a = op.get_attr("adj_x")
        transpose_b = op.get_attr("adj_y")
        batch_a, batch_b = a[:-2], b[:-2]
        batch = int(
            np.prod(np.broadcast_shapes(tuple(batch_a), tuple(batch_b)))
        )
    m, k = (a[-1], a[-2]) if transpose_a else (a[-2], a[-1])
    n = b[-2] if transpose_b else b[-1]
    return 2 * batch * m * k * n


def _einsum_flops(op):
    if len(op.inputs) != 2:
        return 0
    equation = op.get_attr("equation").decode()
    operands = equation.split("->")[0].split(",")
    sizes = {}
    for letters, tensor in zip(operands, op.inputs, strict=True):
        dims = _dims(tensor)
        if dims is None or "." in letters:
            return None
        for letter, size in zip(letters, dims, strict=True):
            sizes[letter] = max(size, sizes.get(letter, 1))
    return 2 * int(np.prod(list(sizes.values())))


def _conv_flops(op):
    filter_dims = _dims(op.inputs[1])
    if op.type == "Conv2DBackpropInput":
        # A transposed convolution's filter is (kh, kw, out, in): each input
        # element (the op's out_backprop) meets kh * kw * out weights.
        out_backprop = _dims(op.inputs[2])
        if filter_dims is None or out_backprop is None:
            return None
        kh, kw, out_channels = filter_dims[:3]
        return 2 * int(np.prod(out_backprop)) * kh * kw * out_channels
    output = _dims(op.outputs[0])
    if output is None or filter_dims is None:
        return None
    kh, kw, in_channels = filter_dims[:3]
    if op.type == "DepthwiseConv2dNative":
        in_channels = 1
    return 2 * int(np.prod(output)) * kh * kw * in_channels


def _op_flops(op):
    if op.type == "MatMul" or op.type.startswith("BatchMatMul"):
        return _matmul_flops(op)
    if op.type == "Einsum":
        return _einsum_flops(op)
    return _conv_flops(op)


def _live_ops(graph):
    """The ops that the graph's outputs (or, without outputs, its sinks)
    depend on, through data and control edges."""
    roots = [t.op for t in getattr(graph, "outputs", []) if t is not None]
    roots += list(getattr(graph, "control_outputs", []))
    if not roots:
        return graph.get_operations()
    seen, stack = set(), list(roots)
    while stack:
        op = stack.pop()
        if op in seen:
            continue
        seen.add(op)
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
    return [op for op in graph.get_operations() if op in seen]


def _static_value(tensor):
    import tensorflow as tf

    value = tf.get_static_value(tensor)
    if value is not None:
        return value
    op = tensor.op
    if op.type in ("Max", "Min", "Identity") and op.inputs:
        first = _static_value(op.inputs[0])
        if first is None:
            return None
        if op.type == "Identity":
            return first
        reduce = np.max if op.type == "Max" else np.min
        return reduce(first)
    return None


def _function_graph(graph, op, attribute):
    function = graph._get_function(op.get_attr(attribute).name)
    return getattr(function, "graph", None)


def _count(graph, counter, multiplier):
    for op in _live_ops(graph):
        if op.type in DENSE_OPS:
            flops = _op_flops(op)
            if flops is None:
                counter.uncounted[op.type] += 1
            else:
                counter.by_type[op.type] += multiplier * flops
        elif op.type in _CALL_OPS:
            body = _function_graph(graph, op, "f")
            if body is not None:
                _count(body, counter, multiplier)
        elif op.type in _IF_OPS:
            # The larger branch: an upper bound on what runs.
            branches = []
            for attribute in ("then_branch", "else_branch"):
                branch = FlopCount()
                body = _function_graph(graph, op, attribute)
                if body is not None:
                    _count(body, branch, multiplier)
                branches.append(branch)
            biggest = max(branches, key=lambda c: c.total)
            counter.by_type.update(biggest.by_type)
            counter.uncounted.update(biggest.uncounted)
        elif op.type in _WHILE_OPS:
            # while_v2's inputs are (loop counter, maximum iterations, ...).
            trips = _static_value(op.inputs[1])
            if trips is None or int(trips) < 0:
                counter.uncounted[f"{op.type} trip count"] += 1
                trips = 1
            body = _function_graph(graph, op, "body")
            if body is not None:
                _count(body, counter, multiplier * int(trips))


def count_dense_flops(concrete_function):
    """A `FlopCount` of a concrete function's graph (nested calls and loop
    bodies included)."""
    counter = FlopCount()
    _count(concrete_function.graph, counter, 1)
    return counter


def forward_flops(model, inputs):
    """Dense FLOPs of one inference forward pass of a Keras model on
    `inputs` (a structure of tensors with a fixed batch size)."""
    import tensorflow as tf

    specs = tf.nest.map_structure(
        lambda x: tf.TensorSpec(x.shape, x.dtype), inputs
    )

    @tf.autograph.experimental.do_not_convert
    def forward(batch):
        return model(batch, training=False)

    concrete = tf.function(forward).get_concrete_function(specs)
    return count_dense_flops(concrete)
