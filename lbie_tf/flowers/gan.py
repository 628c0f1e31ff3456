"""The flowers colorization GAN: a generator and a text-conditioned critic
trained alternately (paper section 3, "Colorization"; the released code).

On each batch one discriminator update, then one generator update that
reads the updated discriminator, as the release did:

    D loss = -log D(L, ab) - log(1 - D(L, G(L, text)))
    G loss = gan_weight * -log D(L, G(L, text))
             + l1_weight * |ab - G(L, text)|_1

with D = sigmoid(logits), the means taken over the batch and the patches
(the paper: "the discriminator score is the average of the final output")
and the L1 over the normalised ab (ab / 110). The release weighs L1 x 100
and the GAN term x 1 and uses the non-saturating generator loss -log D
(the defaults here). The paper writes the generator loss as
log(1 - D(E)) + gamma |E - Y|_1 with gamma = 0.01: l1_weight=0.01,
gan_weight=1.0 and generator_loss="minimax" (DEVIATIONS.md point 8).
"""

import keras
import tensorflow as tf

GENERATOR_LOSSES = ("non_saturating", "minimax")


def _check_weight(name, value):
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or value < 0
    ):
        raise ValueError(
            f"`{name}` must be a non-negative number; received "
            f"{name}={value!r}."
        )
    return float(value)


@keras.saving.register_keras_serializable(package="lbie_flowers")
class ColorizationGAN(keras.Model):
    """A generator and a discriminator trained by `fit` (Keras' DCGAN
    example's shape: `compile(g_optimizer, d_optimizer)`, `train_step`).

    `call` runs the generator, so predict, evaluate's outputs and export
    see the colorizer alone. `optimizer` is the generator's optimizer (its
    `iterations` count the training steps); `d_optimizer` the
    discriminator's. Both, the loss weights and the two networks come back
    from a `.keras` file with their state.

    The losses are Keras loss objects, which divide a replica's mean by
    the number of replicas, so that the optimizers' sum over replicas is
    the global batch's mean under any tf.distribute strategy.

    Args:
      generator: a model from {"lightness", "tokens"} to a dict with "ab"
        (`generator.build_generator`).
      discriminator: a model from {"lightness", "ab", "tokens"} to patch
        logits (`discriminator.build_discriminator`).

    Call arguments:
      inputs: {"lightness" (B, H, W, 1), "tokens" (B, L)}.
      training: passed to the generator.

    Returns:
      The generator's outputs.
    """

    def __init__(self, generator, discriminator, **kwargs):
        super().__init__(**kwargs)
        for argument, model in (
            ("generator", generator),
            ("discriminator", discriminator),
        ):
            if not isinstance(model, keras.Model):
                raise ValueError(
                    f"`{argument}` must be a keras.Model; received "
                    f"{argument}={model!r}."
                )
        self.generator = generator
        self.discriminator = discriminator
        self.d_optimizer = None
        self.l1_weight = 100.0
        self.gan_weight = 1.0
        self.generator_loss = "non_saturating"
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.l1_tracker = keras.metrics.Mean(name="l1")
        self._cross_entropy = keras.losses.BinaryCrossentropy(
            from_logits=True, name="cross_entropy"
        )
        self._absolute_error = keras.losses.MeanAbsoluteError(name="l1")
        # Both networks are functional models, built when made.
        self.built = True

    @property
    def g_optimizer(self):
        """The generator's optimizer, the same object as `optimizer`."""
        return self.optimizer

    def call(self, inputs, training=None):
        return self.generator(inputs, training=training)

    def compile(
        self,
        g_optimizer,
        d_optimizer,
        l1_weight=100.0,
        gan_weight=1.0,
        generator_loss="non_saturating",
        jit_compile=False,
    ):
        """Sets the two optimizers and the loss weights.

        Passing the optimizers of a loaded model again keeps their state
        (iterations, moments). Run it under the strategy scope the model
        was made in: it creates each optimizer's variables for its own
        network.

        Args:
          g_optimizer: the generator's optimizer (becomes `optimizer`).
          d_optimizer: the discriminator's, another object.
          l1_weight: weight of the L1 term (100: release; 0.01: paper).
          gan_weight: weight of the generator's GAN term (1).
          generator_loss: "non_saturating" (-log D(fake), release) or
            "minimax" (log(1 - D(fake)), the paper's equation).
          jit_compile: whether the train step is XLA-compiled.
        """
        l1_weight = _check_weight("l1_weight", l1_weight)
        gan_weight = _check_weight("gan_weight", gan_weight)
        if generator_loss not in GENERATOR_LOSSES:
            raise ValueError(
                f"`generator_loss` must be one of {GENERATOR_LOSSES}; "
                f"received generator_loss={generator_loss!r}."
            )
        g_optimizer = keras.optimizers.get(g_optimizer)
        d_optimizer = keras.optimizers.get(d_optimizer)
        if g_optimizer is d_optimizer:
            raise ValueError(
                "`g_optimizer` and `d_optimizer` must be two optimizer "
                "objects (each keeps the moments of its own network); "
                f"received the same object twice: {g_optimizer!r}."
            )
        super().compile(optimizer=g_optimizer, jit_compile=jit_compile)
        self.d_optimizer = d_optimizer
        self.l1_weight = l1_weight
        self.gan_weight = gan_weight
        self.generator_loss = generator_loss
        # Built here on each network's own variables: left to `fit`, the
        # generator's optimizer would get moments for the critic too.
        if not self.optimizer.built:
            self.optimizer.build(self.generator.trainable_variables)
        if not self.d_optimizer.built:
            self.d_optimizer.build(self.discriminator.trainable_variables)

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.l1_tracker]

    # === Losses ===
    def _critic_inputs(self, inputs, ab):
        return {
            "lightness": inputs["lightness"],
            "ab": ab,
            "tokens": inputs["tokens"],
        }

    def discriminator_loss(self, real_logits, fake_logits):
        """-log D(real) - log(1 - D(fake)), each a mean over the patches
        of the batch, divided by the number of replicas."""
        return self._cross_entropy(
            tf.ones_like(real_logits), real_logits
        ) + self._cross_entropy(tf.zeros_like(fake_logits), fake_logits)

    def generator_gan_loss(self, fake_logits):
        """-log D(fake) (non-saturating) or log(1 - D(fake)) (minimax)."""
        if self.generator_loss == "minimax":
            return -self._cross_entropy(tf.zeros_like(fake_logits), fake_logits)
        return self._cross_entropy(tf.ones_like(fake_logits), fake_logits)

    def _unpack(self, data):
        inputs, targets, sample_weight = keras.utils.unpack_x_y_sample_weight(
            data
        )
        if sample_weight is not None:
            raise ValueError(
                "ColorizationGAN does not take sample weights; received "
                f"data with sample_weight={sample_weight!r}."
            )
        if isinstance(targets, dict):
            targets = targets["ab"]
        return inputs, targets

    def _update_metrics(self, inputs, d_loss, g_loss, l1):
        # The losses hold the 1 / replicas factor; the trackers (summed
        # over replicas, weighted by each replica's batch) take the means.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        batch = tf.shape(inputs["lightness"])[0]
        for tracker, value in (
            (self.d_loss_tracker, d_loss),
            (self.g_loss_tracker, g_loss),
            (self.l1_tracker, l1),
        ):
            tracker.update_state(value * replicas, sample_weight=batch)
        results = {tracker.name: tracker.result() for tracker in self.metrics}
        # The core's callbacks watch `loss` for NaN.
        results["loss"] = results["g_loss"]
        return results

    # === Steps ===
    def train_step(self, data):
        inputs, real_ab = self._unpack(data)
        generator_variables = self.generator.trainable_variables
        critic_variables = self.discriminator.trainable_variables
        with tf.GradientTape() as g_tape:
            fake_ab = self.generator(inputs, training=True)["ab"]
            # The discriminator's step, off the generator's tape, on the
            # same fake (one generator pass per batch, so a Gumbel gate
            # draws once and counts one step).
            with g_tape.stop_recording():
                with tf.GradientTape() as d_tape:
                    real_logits = self.discriminator(
                        self._critic_inputs(inputs, real_ab), training=True
                    )
                    fake_logits = self.discriminator(
                        self._critic_inputs(inputs, tf.stop_gradient(fake_ab)),
                        training=True,
                    )
                    d_loss = self.discriminator_loss(real_logits, fake_logits)
                    scaled_d_loss = self.d_optimizer.scale_loss(d_loss)
                d_gradients = d_tape.gradient(scaled_d_loss, critic_variables)
                self.d_optimizer.apply_gradients(
                    zip(d_gradients, critic_variables, strict=True)
                )
            # The generator's step reads the updated discriminator.
            fake_logits = self.discriminator(
                self._critic_inputs(inputs, fake_ab), training=True
            )
            l1 = self._absolute_error(real_ab, fake_ab)
            g_loss = (
                self.gan_weight * self.generator_gan_loss(fake_logits)
                + self.l1_weight * l1
            )
            scaled_g_loss = self.optimizer.scale_loss(g_loss)
        g_gradients = g_tape.gradient(scaled_g_loss, generator_variables)
        self.optimizer.apply_gradients(
            zip(g_gradients, generator_variables, strict=True)
        )
        return self._update_metrics(inputs, d_loss, g_loss, l1)

    def test_step(self, data):
        inputs, real_ab = self._unpack(data)
        fake_ab = self.generator(inputs, training=False)["ab"]
        real_logits = self.discriminator(
            self._critic_inputs(inputs, real_ab), training=False
        )
        fake_logits = self.discriminator(
            self._critic_inputs(inputs, fake_ab), training=False
        )
        d_loss = self.discriminator_loss(real_logits, fake_logits)
        l1 = self._absolute_error(real_ab, fake_ab)
        g_loss = (
            self.gan_weight * self.generator_gan_loss(fake_logits)
            + self.l1_weight * l1
        )
        return self._update_metrics(inputs, d_loss, g_loss, l1)

    # === Config ===
    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": keras.saving.serialize_keras_object(
                self.discriminator
            ),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        generator = keras.saving.deserialize_keras_object(
            config.pop("generator"), custom_objects=custom_objects
        )
        discriminator = keras.saving.deserialize_keras_object(
            config.pop("discriminator"), custom_objects=custom_objects
        )
        return cls(generator, discriminator, **config)

    def get_compile_config(self):
        if not self.compiled:
            return {}
        return {
            "g_optimizer": keras.saving.serialize_keras_object(self.optimizer),
            "d_optimizer": keras.saving.serialize_keras_object(
                self.d_optimizer
            ),
            "l1_weight": self.l1_weight,
            "gan_weight": self.gan_weight,
            "generator_loss": self.generator_loss,
            "jit_compile": bool(self.jit_compile),
        }

    def compile_from_config(self, config):
        config = dict(config)
        for key in ("g_optimizer", "d_optimizer"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        self.compile(**config)
