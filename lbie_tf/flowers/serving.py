"""The flowers task's SavedModel signatures: the tokenizer, the resize to
the model's size and the colour mapped back at the input's own resolution
in the graph, so that a server needs only TensorFlow."""

from lbie_tf.core import serving as core_serving
from lbie_tf.flowers import input_pipeline

SIGNATURE_NAME = "serving_default"
BYTES_SIGNATURE_NAME = core_serving.BYTES_SIGNATURE_NAME


class _Serving:
    """The serving functions of one generator: `__call__` is
    `serving_default`, `serve_bytes` is `serving_bytes`."""

    def __init__(self, tf, generator, tokens, max_tokens, image_size):
        self.tf = tf
        self.generator = generator
        self.image_size = image_size
        self.encoder = input_pipeline.CaptionEncoder(tokens, max_tokens)

    def input_signature(self):
        tf = self.tf
        return [
            tf.TensorSpec([None, None, None, 3], tf.uint8, name="image"),
            tf.TensorSpec([None], tf.string, name="caption"),
        ]

    def colorize(self, image, tokens):
        """uint8 [B, H, W, 3] and token ids -> (uint8 [B, H, W, 3], ab at the
        model's size). The model sees the image area-resized to its size;
        its ab (bilinear back to H x W) joins the input's own full-size L."""
        tf = self.tf
        size = self.image_size
        pixels = tf.image.convert_image_dtype(image, tf.float32)
        small = tf.clip_by_value(
            tf.image.resize(pixels, [size, size], method="area"), 0.0, 1.0
        )
        lightness, _ = input_pipeline.to_model_inputs(small)

        # One image per generator call: the released batch norm normalises
        # with the batch's own statistics even at inference, so an image's
        # colours must not depend on the others sent with it.
        def generate(element):
            one_lightness, one_tokens = element
            ab = self.generator(
                {"lightness": one_lightness[None], "tokens": one_tokens[None]},
                training=False,
            )["ab"]
            return tf.cast(ab[0], tf.float32)

        ab = tf.map_fn(
            generate,
            (lightness, tokens),
            fn_output_signature=tf.TensorSpec([size, size, 2], tf.float32),
        )
        height, width = tf.shape(image)[1], tf.shape(image)[2]
        full_ab = tf.image.resize(ab, [height, width], method="bilinear")
        full_lightness, _ = input_pipeline.to_model_inputs(pixels)
        rgb = input_pipeline.to_rgb(full_lightness, full_ab)
        return tf.image.convert_image_dtype(rgb, tf.uint8, saturate=True), ab

    def __call__(self, image, caption):
        colorized, ab = self.colorize(image, self.encoder(caption))
        return {"colorized": colorized, "ab": ab}

    def serve_bytes(self, image_bytes, text):
        """Each request on its own (images of any sizes in one call):
        decoded with the core's checks, coloured, returned as a PNG."""
        tf = self.tf
        same_batch = tf.debugging.Assert(
            tf.equal(tf.size(image_bytes), tf.size(text)),
            [
                "image_bytes and text must hold one entry per request; "
                "their lengths are",
                tf.size(image_bytes),
                tf.size(text),
            ],
        )
        with tf.control_dependencies([same_batch]):
            image_bytes = tf.identity(image_bytes)
        tokens = self.encoder(text)

        def one(element):
            data, ids, index = element
            name = tf.strings.join(
                ["image_bytes[", tf.strings.as_string(index), "]"]
            )
            image = core_serving.decode_image(data, name=name)[None]
            colorized, _ = self.colorize(image, ids[None])
            return tf.io.encode_png(colorized[0])

        indices = tf.range(tf.size(image_bytes, out_type=tf.int64))
        png = tf.map_fn(
            one,
            (image_bytes, tokens, indices),
            fn_output_signature=tf.TensorSpec([], tf.string),
        )
        return {"png_bytes": png}


def endpoints(generator, tokens, max_tokens, image_size):
    """The flowers SavedModel signatures of `generator` and their resources.

    `serving_default` takes `image` (uint8 [B, H, W, 3], B photographs of
    one size, any size) and `caption` (string [B]) and returns `colorized`
    (uint8 [B, H, W, 3]: the input's own L with the predicted ab) and `ab`
    (float32 [B, S, S, 2], normalised, at the model's size S). A caption
    without a word fails with InvalidArgumentError; unknown words read as
    <unk>.

    `serving_bytes` takes `image_bytes` (string [B]: PNG or JPEG files of
    any sizes and modes, each checked against core MAX_IMAGE_PIXELS from
    its header before decoding) and `text` (string [B]) and returns
    `png_bytes` (string [B]: each coloured image as a PNG at its input's
    size).
    """
    import tensorflow as tf

    from lbie_tf.core import task as task_lib

    serving = _Serving(tf, generator, tokens, max_tokens, image_size)
    return [
        task_lib.Endpoint(SIGNATURE_NAME, serving, serving.input_signature()),
        task_lib.Endpoint(
            BYTES_SIGNATURE_NAME,
            serving.serve_bytes,
            core_serving.bytes_input_signature(),
        ),
    ], [serving.encoder.table]
