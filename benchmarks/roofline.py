"""Measures the machine's dense float32 matmul and 3x3 convolution GFLOP/s.

The probe is what a model's achieved FLOP/s is compared with: a large
matmul and a 3x3 convolution, each a `tf.function` run a few times after a
warm-up, in the same process (so under the same oneDNN setting and load)
as the model it is compared with. The best repetition is reported as the
attainable rate, with the median beside it.
"""

import statistics
import time

# (M, K, N) of the matmul and (batch, height, width, channels) of the conv
# input (3x3 kernel, as many output channels, "same" padding).
FULL_SIZES = {"matmul": (2048, 2048, 2048), "conv": (8, 56, 56, 128)}
QUICK_SIZES = {"matmul": (512, 512, 512), "conv": (2, 28, 28, 32)}


def matmul_flops(m, k, n):
    return 2 * m * k * n


def conv3x3_flops(batch, height, width, channels):
    return 2 * batch * height * width * channels * channels * 9


def _time(function, flops, repetitions, warmup):
    for _ in range(warmup):
        function().numpy()
    seconds = []
    for _ in range(repetitions):
        start = time.perf_counter()
        function().numpy()
        seconds.append(time.perf_counter() - start)
    rates = [flops / s / 1e9 for s in seconds]
    return {
        "gflop_per_s": round(max(rates), 2),
        "median_gflop_per_s": round(statistics.median(rates), 2),
        "flops_per_call": flops,
        "repetitions": repetitions,
    }


def probe(quick=False, repetitions=5, warmup=2):
    """{"matmul": {...}, "conv3x3": {...}}, each with its best and median
    GFLOP/s."""
    import tensorflow as tf

    sizes = QUICK_SIZES if quick else FULL_SIZES
    generator = tf.random.Generator.from_seed(0)
    m, k, n = sizes["matmul"]
    a = generator.normal([m, k])
    b = generator.normal([k, n])
    batch, height, width, channels = sizes["conv"]
    images = generator.normal([batch, height, width, channels])
    kernel = generator.normal([3, 3, channels, channels])

    @tf.function
    def matmul():
        return tf.reduce_sum(tf.matmul(a, b))

    @tf.function
    def conv():
        return tf.reduce_sum(
            tf.nn.conv2d(images, kernel, strides=1, padding="SAME")
        )

    return {
        "matmul": {
            "shape_mkn": [m, k, n],
            **_time(matmul, matmul_flops(m, k, n), repetitions, warmup),
        },
        "conv3x3": {
            "input_shape": [batch, height, width, channels],
            **_time(
                conv,
                conv3x3_flops(batch, height, width, channels),
                repetitions,
                warmup,
            ),
        },
    }
