"""ReferIt's SavedModel signatures: the letterbox and the tokenizer in the
graph, the model, and the mask back at the input's size, so a server needs
only TensorFlow."""

from lbie_tf.core import serving as core_serving
from lbie_tf.referit import input_pipeline, summaries

SIGNATURE_NAME = "serving_default"
BYTES_SIGNATURE_NAME = core_serving.BYTES_SIGNATURE_NAME


class _Serving(core_serving.BytesServing):
    """Builds the serving functions of one model: `__call__` is
    `serving_default`; `serve_bytes` decodes one image with the core's
    checks and returns the overlay picture as a PNG."""

    def __init__(self, tf, model, vocabulary, image_size):
        self.tf = tf
        self.model = model
        self.image_size = image_size
        self.encoder = input_pipeline.TextEncoder(vocabulary)

    def input_signature(self):
        tf = self.tf
        return [
            tf.TensorSpec([None, None, None, 3], tf.uint8, name="image"),
            tf.TensorSpec([None], tf.string, name="expression"),
        ]

    def __call__(self, image, expression):
        tf = self.tf
        size = self.image_size
        letterboxed = tf.map_fn(
            lambda pixels: input_pipeline.letterbox_image(pixels, size),
            image,
            fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32),
        )
        outputs = self.model(
            {"image": letterboxed, "expression": self.encoder(expression)},
            training=False,
        )
        logits = tf.cast(outputs["logits"][..., 0], tf.float32)
        height, width = tf.shape(image)[1], tf.shape(image)[2]
        masks = tf.map_fn(
            lambda frame: input_pipeline.prediction_to_original(
                frame > 0, height, width, size
            ),
            logits,
            fn_output_signature=tf.TensorSpec([None, None], tf.bool),
        )
        return {"mask": tf.cast(masks, tf.uint8)}

    def overlay(self, image, mask):
        """`summaries.overlay` in the graph: uint8 [B, H, W, 3]."""
        tf = self.tf
        alpha = tf.cast(mask, tf.float32)[..., None] * (summaries.OVERLAY_ALPHA)
        colour = tf.constant(summaries.OVERLAY_RGB, tf.float32)
        mixed = tf.cast(image, tf.float32) * (1.0 - alpha) + colour * alpha
        return tf.cast(tf.clip_by_value(tf.round(mixed), 0, 255), tf.uint8)

    def serve_bytes(self, image_bytes, text):
        """One request per call: images of different sizes cannot share a
        batch, so B must be 1 (InvalidArgumentError otherwise)."""
        tf = self.tf
        one = tf.debugging.Assert(
            tf.logical_and(
                tf.equal(tf.size(image_bytes), 1), tf.equal(tf.size(text), 1)
            ),
            [
                "ReferIt's serving_bytes takes one image and one expression "
                "per call (photographs of different sizes cannot share a "
                "batch; serving_default takes a batch of one size); "
                "received image_bytes and text of lengths",
                tf.size(image_bytes),
                tf.size(text),
            ],
        )
        with tf.control_dependencies([one]):
            image_bytes = tf.identity(image_bytes)
        image = core_serving.decode_image(
            image_bytes[0], name="image_bytes[0]"
        )[None]
        mask = self(image, text)["mask"]
        picture = self.overlay(image, mask)
        return {"png_bytes": core_serving.encode_png(picture), "mask": mask}


def endpoints(model, vocabulary, image_size):
    """The ReferIt SavedModel signatures of `model` and their resources.

    `serving_default` takes `image` (uint8 [B, H, W, 3], B photographs of
    one size, any size) and `expression` (string [B]) and returns `mask`
    (uint8 [B, H, W], 1 on the referred object): the letterbox to the
    model's `image_size`, the tokenizer (`input_pipeline.TextEncoder`: the
    first 20 tokens, unknown words <unk>) and the inverse letterbox run in
    the graph. An empty expression fails with InvalidArgumentError.

    `serving_bytes` takes `image_bytes` (string [1]: one PNG or JPEG of
    any size and mode, checked against core MAX_IMAGE_PIXELS from its
    header before decoding) and `text` (string [1]) and returns
    `png_bytes` (the mask laid over the image in red, as a PNG) and `mask`;
    more than one request per call fails with InvalidArgumentError.
    """
    import tensorflow as tf

    from lbie_tf.core import task as task_lib

    serving = _Serving(tf, model, vocabulary, image_size)
    default = task_lib.Endpoint(
        SIGNATURE_NAME, serving, serving.input_signature()
    )
    return [default, serving.bytes_endpoint()], [serving.encoder.table]
