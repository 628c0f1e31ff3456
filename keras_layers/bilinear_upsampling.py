"""Transposed convolutions initialised to bilinear upsampling kernels."""

import keras
import numpy as np
from keras import ops

from keras_layers.argument_checks import check_positive_int

VARIANTS = ("fcn", "hu")
PADDINGS = ("same", "valid")


def _check_variant(variant, kernel_size):
    if variant not in VARIANTS:
        raise ValueError(
            f"`variant` must be one of {VARIANTS}; received "
            f"variant={variant!r}."
        )
    if variant == "hu" and kernel_size % 2:
        raise ValueError(
            "The 'hu' variant needs an even `kernel_size` (its filter has "
            f"length 2s); received kernel_size={kernel_size!r}."
        )


def bilinear_kernel(kernel_size, variant="fcn"):
    """A (k, k) bilinear upsampling kernel (Hu et al. 2016).

    Both variants are samples of the tent t(x) = max(0, 1 - |x| / factor),
    outer-multiplied with itself.

    - "fcn": the standard FCN kernel: factor = (k + 1) // 2, centred on
      factor - 1 when k is odd and factor - 0.5 when k is even. With
      k = 2 * stride and "same" padding it interpolates between pixel
      centres.
    - "hu": Hu et al.'s kernel, the outer product of
      f = [0, 1, ..., s - 1, s, s - 1, ..., 1] / s of length 2s (k = 2s must
      be even): the same tent centred on s, half a pixel off the FCN kernel.

    Args:
      kernel_size: k, a positive integer (even for "hu").
      variant: "fcn" or "hu".

    Returns:
      A float32 NumPy array (k, k).
    """
    check_positive_int("kernel_size", kernel_size)
    _check_variant(variant, kernel_size)
    positions = np.arange(kernel_size, dtype="float64")
    if variant == "fcn":
        factor = (kernel_size + 1) // 2
        centre = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    else:
        factor = kernel_size // 2
        centre = factor
    filter_1d = 1.0 - np.abs(positions - centre) / factor
    return np.outer(filter_1d, filter_1d).astype("float32")


def _diagonal_kernel(shape, variant):
    """A (k, k, out, in) kernel with the bilinear kernel on channel pairs."""
    shape = tuple(int(d) for d in shape)
    if len(shape) != 4 or shape[0] != shape[1]:
        raise ValueError(
            "A bilinear kernel needs a square 4-D shape (k, k, out_channels, "
            f"in_channels); received shape={shape}."
        )
    kernel_size, _, out_channels, in_channels = shape
    if in_channels not in (1, out_channels):
        raise ValueError(
            "A bilinear kernel maps channel c to channel c, or one input "
            "channel to every output: in_channels must be 1 or equal "
            f"out_channels; received shape={shape}."
        )
    kernel = np.zeros(shape, "float32")
    filter_2d = bilinear_kernel(kernel_size, variant)
    for c in range(out_channels):
        kernel[:, :, c, c if in_channels > 1 else 0] = filter_2d
    return kernel


def _tap_rows(strides):
    """(3, s) kernel rows of `transposed_conv_by_taps`: the row through
    which output phase t reads input tap d in {-1, 0, 1}; 2s (a zero row
    appended to the kernel) where the kernel does not reach."""
    phases = np.arange(strides)[None, :]
    taps = np.arange(-1, 2)[:, None]
    rows = phases + strides // 2 - strides * taps
    return np.where((rows >= 0) & (rows < 2 * strides), rows, 2 * strides)


def transposed_conv_by_taps(inputs, kernel, strides):
    """`ops.conv_transpose(inputs, kernel, strides, padding="same")` for a
    kernel of size 2 * strides, as one matmul over 3 x 3 neighbourhoods.

    With kernel 2s, stride s and "same" padding (s // 2 output pixels
    cropped before each axis), output pixel s * q + t reads input pixels
    q - 1, q and q + 1 (zero outside the map) through kernel rows
    t + s // 2 - s * d for d = -1, 0, 1 (zero where the row is outside
    [0, 2s)), and the same along the width. So the output is each input
    pixel's zero-padded 3 x 3 neighbourhood (9 C values) times a
    (9 C, s * s * O) rearrangement of the kernel: the sums of the
    transposed convolution in another order. On CPU it is several times
    faster than TensorFlow's transposed convolution for the few channels
    and large strides of the heads here (the CoSaL original family
    upsamples 3 x 3 by 16; results/bench_profile.md).

    Args:
      inputs: (N, H, W, C) with static H and W.
      kernel: (2s, 2s, O, C), the layout of `ops.conv_transpose`.
      strides: s.

    Returns:
      (N, s H, s W, O).
    """
    s = int(strides)
    height, width, channels = inputs.shape[1:]
    out_channels = kernel.shape[2]
    rows = _tap_rows(s).reshape(-1)
    kernel = ops.pad(kernel, [[0, 1], [0, 1], [0, 0], [0, 0]])
    kernel = ops.take(ops.take(kernel, rows, axis=0), rows, axis=1)
    kernel = ops.reshape(kernel, (3, s, 3, s, out_channels, channels))
    padded = ops.pad(inputs, [[0, 0], [1, 1], [1, 1], [0, 0]])
    neighbourhoods = ops.stack(
        [
            ops.stack(
                [padded[:, d : d + height, e : e + width] for e in range(3)],
                axis=3,
            )
            for d in range(3)
        ],
        axis=3,
    )
    outputs = ops.einsum("nqwdec,dtefoc->nqtwfo", neighbourhoods, kernel)
    return ops.reshape(outputs, (-1, s * height, s * width, out_channels))


@keras.saving.register_keras_serializable(package="lbie")
class BilinearInitializer(keras.initializers.Initializer):
    """Bilinear upsampling initialiser for transposed convolutions.

    Fills a Conv2DTranspose kernel (k, k, out_channels, in_channels) with
    `bilinear_kernel(k, variant)` on each channel pair (c, c) and zeros
    elsewhere (Hu et al. 2016; FCN and Hu et al. initialise their
    deconvolutions this way). With one input channel, every output channel
    receives it.

    Args:
      variant: "fcn" (standard FCN kernel) or "hu" (Hu et al.'s kernel).
    """

    def __init__(self, variant="fcn"):
        if variant not in VARIANTS:
            raise ValueError(
                f"`variant` must be one of {VARIANTS}; received "
                f"variant={variant!r}."
            )
        self.variant = variant

    def __call__(self, shape, dtype=None):
        dtype = dtype or keras.backend.floatx()
        return ops.cast(_diagonal_kernel(shape, self.variant), dtype)

    def get_config(self):
        return {"variant": self.variant}


@keras.saving.register_keras_serializable(package="lbie")
class BilinearConv2DTranspose(keras.layers.Layer):
    """Transposed convolution with bilinear initialisation (Hu et al. 2016).

    The upsampling layer of the paper (section 4.1: "initialized with
    bilinear transforms") and of Hu et al.'s baseline (kernel 64, stride 32,
    no bias). The kernel starts as the identity across channels (channel c
    maps only to channel c) with `bilinear_kernel(kernel_size, variant)`
    spatially, so `filters` must equal the number of input channels.

    With "same" padding the output is `strides` times the input. For an
    even stride s and kernel_size = 2s, the "fcn" kernel samples the input
    at coordinate (n + 0.5) / s - 0.5 for output pixel n (pixel centres
    aligned), the "hu" kernel at n / s - 0.5: half an output pixel off.

    Args:
      filters: number of output channels; must equal the input channels.
      kernel_size: a positive integer k (even for "hu").
      strides: a positive integer, the upsampling factor.
      variant: "fcn" or "hu".
      use_bias: whether to add a bias (zeros at first).
      trainable_kernel: whether the kernel is trained or stays bilinear.
      padding: "same" or "valid", as in `keras.layers.Conv2DTranspose`.
    """

    def __init__(
        self,
        filters,
        kernel_size,
        strides,
        variant="fcn",
        use_bias=False,
        trainable_kernel=True,
        padding="same",
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_int("filters", filters)
        check_positive_int("kernel_size", kernel_size)
        check_positive_int("strides", strides)
        _check_variant(variant, kernel_size)
        if padding not in PADDINGS:
            raise ValueError(
                f"`padding` must be one of {PADDINGS}; received "
                f"padding={padding!r}."
            )
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.strides = int(strides)
        self.variant = variant
        self.use_bias = bool(use_bias)
        self.trainable_kernel = bool(trainable_kernel)
        self.padding = padding
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != 4:
            raise ValueError(
                "`inputs` must be a rank-4 tensor (batch, height, width, "
                f"channels); received shape {input_shape}."
            )
        if input_shape[-1] != self.filters:
            raise ValueError(
                "`filters` must equal the input channels, since the bilinear "
                f"kernel maps channel c to channel c; received filters="
                f"{self.filters} for input shape {input_shape}."
            )
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.kernel_size, self.kernel_size, self.filters)
            + (self.filters,),
            initializer=BilinearInitializer(self.variant),
            trainable=self.trainable_kernel,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=(self.filters,), initializer="zeros"
            )
        else:
            self.bias = None

    def call(self, inputs):
        kernel = ops.cast(self.kernel, inputs.dtype)
        if (
            self.padding == "same"
            and self.kernel_size == 2 * self.strides
            and None not in tuple(inputs.shape[1:3])
        ):
            # Every head here (kernel 2s); the same sums, several times
            # faster on CPU (transposed_conv_by_taps).
            outputs = transposed_conv_by_taps(inputs, kernel, self.strides)
        else:
            outputs = ops.conv_transpose(
                inputs,
                kernel,
                strides=self.strides,
                padding=self.padding,
                data_format="channels_last",
            )
        if self.bias is not None:
            outputs = outputs + ops.cast(self.bias, outputs.dtype)
        return outputs

    def _output_length(self, length):
        if length is None:
            return None
        if self.padding == "same":
            return length * self.strides
        return (length - 1) * self.strides + max(self.kernel_size, self.strides)

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        return (
            input_shape[0],
            self._output_length(input_shape[1]),
            self._output_length(input_shape[2]),
            self.filters,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "strides": self.strides,
                "variant": self.variant,
                "use_bias": self.use_bias,
                "trainable_kernel": self.trainable_kernel,
                "padding": self.padding,
            }
        )
        return config
