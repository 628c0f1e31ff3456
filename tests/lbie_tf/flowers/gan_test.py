"""Tests of the flowers colorization GAN: its losses, its alternating steps,
`fit`, saving and resuming, and tf.distribute."""

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from lbie_tf.core import artifacts
from lbie_tf.flowers import discriminator, gan, generator

ROOT = pathlib.Path(__file__).resolve().parents[3]
TEXT_SIZES = {
    "vocabulary_size": 10,
    "max_tokens": 5,
    "embedding_dim": 4,
    "lstm_units": 2,
    "attention_units": 3,
    "seed": 1,
}


def make_gan(text=True, batch_norm_synchronized=False, **generator_options):
    colorizer = generator.build_generator(
        ngf=2,
        text=text,
        batch_norm_synchronized=batch_norm_synchronized,
        **generator_options,
        **TEXT_SIZES,
    )
    critic = discriminator.build_discriminator(
        image_size=32, filters=2, text=text, **TEXT_SIZES
    )
    return gan.ColorizationGAN(colorizer, critic)


def make_data(count=8, seed=0):
    rng = np.random.default_rng(seed)
    inputs = {
        "lightness": rng.uniform(-1, 1, (count, 32, 32, 1)).astype("float32"),
        "tokens": rng.integers(0, 10, (count, 5)).astype("int32"),
    }
    targets = {
        "ab": rng.uniform(-0.5, 0.5, (count, 32, 32, 2)).astype("float32")
    }
    return inputs, targets


def dataset(inputs, targets, batch_size, start=0, stop=None):
    def cut(values):
        return {key: value[start:stop] for key, value in values.items()}

    return tf.data.Dataset.from_tensor_slices(
        (cut(inputs), cut(targets))
    ).batch(batch_size)


def adam():
    return keras.optimizers.Adam(1e-3, beta_1=0.5)


def all_weights(model):
    return [v.numpy() for v in model.weights] + [
        v.numpy()
        for v in model.optimizer.variables + model.d_optimizer.variables
    ]


# === Losses ===
def test_losses_are_the_released_formulas():
    model = make_gan()
    model.compile(adam(), adam())
    real = tf.constant([[[[2.0]], [[-1.0]]]])
    fake = tf.constant([[[[-0.5]], [[3.0]]]])

    def softplus(x):
        return np.log1p(np.exp(x))

    # -log sigmoid(x) = softplus(-x), -log(1 - sigmoid(x)) = softplus(x).
    expected_d = softplus(-real.numpy()).mean() + softplus(fake.numpy()).mean()
    np.testing.assert_allclose(
        model.discriminator_loss(real, fake), expected_d, rtol=1e-6
    )
    np.testing.assert_allclose(
        model.generator_gan_loss(fake), softplus(-fake.numpy()).mean(), 1e-6
    )
    model.compile(adam(), adam(), generator_loss="minimax")
    # The paper's log(1 - D(fake)), which the generator minimises.
    np.testing.assert_allclose(
        model.generator_gan_loss(fake), -softplus(fake.numpy()).mean(), 1e-6
    )


def test_compile_settings_and_errors():
    model = make_gan()
    g_optimizer, d_optimizer = adam(), adam()
    model.compile(g_optimizer, d_optimizer)
    assert model.optimizer is g_optimizer and model.g_optimizer is g_optimizer
    assert model.d_optimizer is d_optimizer
    assert (model.l1_weight, model.gan_weight) == (100.0, 1.0)
    assert model.generator_loss == "non_saturating"
    # Each optimizer holds moments for its own network only.
    assert len(g_optimizer.variables) == 2 + 2 * len(
        model.generator.trainable_variables
    )
    assert len(d_optimizer.variables) == 2 + 2 * len(
        model.discriminator.trainable_variables
    )
    with pytest.raises(ValueError, match="two optimizer"):
        model.compile(g_optimizer, g_optimizer)
    with pytest.raises(ValueError, match="l1_weight"):
        model.compile(adam(), adam(), l1_weight=-1.0)
    with pytest.raises(ValueError, match="generator_loss"):
        model.compile(adam(), adam(), generator_loss="wasserstein")
    with pytest.raises(ValueError, match="generator"):
        gan.ColorizationGAN("not a model", model.discriminator)


# === Steps ===
def _softplus(x):
    return tf.nn.softplus(x)


def _reference_step(colorizer, critic, inputs, real_ab, lr, l1_weight, order):
    """One hand-rolled SGD step of the released losses.

    order "d_then_g": the generator's loss reads the updated
    discriminator; "simultaneous": both read the old one.
    """

    def critic_inputs(ab):
        return {**inputs, "ab": ab}

    with tf.GradientTape() as tape:
        fake = colorizer(inputs, training=True)["ab"]
        real_logits = critic(critic_inputs(real_ab), training=True)
        fake_logits = critic(critic_inputs(fake), training=True)
        d_loss = tf.reduce_mean(_softplus(-real_logits)) + tf.reduce_mean(
            _softplus(fake_logits)
        )
    gradients = tape.gradient(d_loss, critic.trainable_variables)
    new_critic = [
        v.numpy() - lr * tf.convert_to_tensor(g).numpy()
        for v, g in zip(critic.trainable_variables, gradients, strict=True)
    ]
    if order == "d_then_g":
        for v, value in zip(
            critic.trainable_variables, new_critic, strict=True
        ):
            v.assign(value)
    with tf.GradientTape() as tape:
        fake = colorizer(inputs, training=True)["ab"]
        fake_logits = critic(critic_inputs(fake), training=True)
        l1 = tf.reduce_mean(tf.abs(real_ab - fake))
        g_loss = tf.reduce_mean(_softplus(-fake_logits)) + l1_weight * l1
    gradients = tape.gradient(g_loss, colorizer.trainable_variables)
    for v, g in zip(colorizer.trainable_variables, gradients, strict=True):
        v.assign_sub(lr * tf.convert_to_tensor(g))
    for v, value in zip(critic.trainable_variables, new_critic, strict=True):
        v.assign(value)
    return float(d_loss), float(g_loss), float(l1)


def test_discriminator_steps_before_the_generator():
    inputs, targets = make_data(count=2)
    lr, l1_weight = 0.5, 3.0
    model = make_gan()
    model.compile(
        keras.optimizers.SGD(lr),
        keras.optimizers.SGD(lr),
        l1_weight=l1_weight,
    )
    # The order of the updates is train_step's Python: eagerly, without a
    # trace (test_fit_predict_and_evaluate runs it in graph mode).
    model.run_eagerly = True
    start = model.get_weights()
    history = model.fit(
        dataset(inputs, targets, 2), epochs=1, verbose=0
    ).history

    references = {}
    for order in ("d_then_g", "simultaneous"):
        reference = make_gan()
        reference.set_weights(start)
        losses = _reference_step(
            reference.generator,
            reference.discriminator,
            {k: tf.constant(v) for k, v in inputs.items()},
            tf.constant(targets["ab"]),
            lr,
            l1_weight,
            order,
        )
        references[order] = (reference, losses)

    reference, (d_loss, g_loss, l1) = references["d_then_g"]
    for ours, theirs in zip(model.weights, reference.weights, strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-5, err_msg=ours.path)
    np.testing.assert_allclose(history["d_loss"], [d_loss], rtol=1e-5)
    np.testing.assert_allclose(history["g_loss"], [g_loss], rtol=1e-5)
    np.testing.assert_allclose(history["l1"], [l1], rtol=1e-5)
    assert history["loss"] == history["g_loss"]

    # The check tells the two orders apart: with the old discriminator the
    # generator ends elsewhere.
    simultaneous = references["simultaneous"][0].generator
    assert any(
        not np.allclose(a, b, atol=1e-5)
        for a, b in zip(
            model.generator.get_weights(),
            simultaneous.get_weights(),
            strict=True,
        )
    )


def test_fit_predict_and_evaluate():
    inputs, targets = make_data(count=4)
    model = make_gan()
    model.compile(adam(), adam())
    start = [w.copy() for w in model.get_weights()]
    # fit runs train_step eagerly (a graph-mode trace of it takes about
    # 25 s; the task checklist and the editing tests train in graph mode);
    # predict and evaluate run in graph mode.
    model.run_eagerly = True
    history = model.fit(dataset(inputs, targets, 2), epochs=1, verbose=0)
    model.run_eagerly = False
    assert set(history.history) == {"d_loss", "g_loss", "l1", "loss"}
    assert all(np.isfinite(v[0]) for v in history.history.values())
    assert int(model.optimizer.iterations.numpy()) == 2
    assert int(model.d_optimizer.iterations.numpy()) == 2
    changed = [
        not np.array_equal(a, b)
        for a, b in zip(start, model.get_weights(), strict=True)
    ]
    assert sum(changed) > len(changed) // 2

    # One batch of 4: the released batch norm reads the batch's statistics.
    outputs = model.predict(inputs, batch_size=4, verbose=0)
    assert set(outputs) == {"ab", "attention_weights"}
    assert outputs["ab"].shape == (4, 32, 32, 2)
    # tanh; float32 rounds a saturated one to exactly 1.
    assert np.abs(outputs["ab"]).max() <= 1.0
    # Eager and graph differ by the order of float sums.
    direct = model(inputs, training=False)
    np.testing.assert_allclose(direct["ab"], outputs["ab"], atol=1e-4)

    after_fit = [w.copy() for w in model.get_weights()]
    results = model.evaluate(
        dataset(inputs, targets, 2), verbose=0, return_dict=True
    )
    assert set(results) == {"d_loss", "g_loss", "l1", "loss"}
    for a, b in zip(after_fit, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_no_text_gan_trains():
    inputs, targets = make_data(count=4)
    model = make_gan(text=False)
    model.compile(adam(), adam())
    start = [w.copy() for w in model.get_weights()]
    history = model.fit(dataset(inputs, targets, 2), epochs=1, verbose=0)
    assert all(np.isfinite(v[0]) for v in history.history.values())
    for network in (model.generator, model.discriminator):
        assert network.trainable_variables
    assert all(
        not np.array_equal(a, b)
        for a, b in zip(start, model.get_weights(), strict=True)
        if a.size > 1
    )
    other = dict(inputs, tokens=np.zeros_like(inputs["tokens"]))
    np.testing.assert_array_equal(
        model(inputs, training=False)["ab"], model(other, training=False)["ab"]
    )


# === Saving and resuming ===
def test_config_round_trip():
    model = make_gan()
    clone = gan.ColorizationGAN.from_config(model.get_config())
    assert clone.generator.name == model.generator.name
    assert clone.discriminator.name == model.discriminator.name
    assert len(clone.weights) == len(model.weights)


@pytest.mark.slow
def test_resume_from_a_backup_is_bit_identical(tmp_path):
    # The Gumbel variant (T = 2) is the hard case: its noise generator and
    # its step counter must come back too. The three models run their
    # train_step eagerly: the same Python and state, without three traces
    # of about a minute each (the task checklist resumes a killed graph-mode
    # run through the CLI).
    options = {"num_steps": 2, "termination": "gumbel"}
    inputs, targets = make_data(count=8)
    settings = {"l1_weight": 50.0, "gan_weight": 2.0}

    keras.utils.set_random_seed(0)
    uninterrupted = make_gan(**options)
    uninterrupted.compile(adam(), adam(), **settings)
    uninterrupted.run_eagerly = True
    start = uninterrupted.get_weights()
    uninterrupted.fit(dataset(inputs, targets, 2), epochs=1, verbose=0)

    keras.utils.set_random_seed(0)
    first = make_gan(**options)
    first.compile(adam(), adam(), **settings)
    first.run_eagerly = True
    first.set_weights(start)
    first.fit(dataset(inputs, targets, 2, stop=4), epochs=1, verbose=0)
    path = str(tmp_path / "backup.keras")
    artifacts.save_model(first, path)

    # As the core resumes: load, restore the noise states, compile again
    # with the loaded optimizer.
    resumed = keras.saving.load_model(path)
    restored = artifacts.restore_seed_generators(resumed, path)
    assert restored == len(artifacts.seed_generator_states(first)) >= 1
    assert isinstance(resumed, gan.ColorizationGAN)
    assert int(resumed.optimizer.iterations.numpy()) == 2
    assert int(resumed.d_optimizer.iterations.numpy()) == 2
    assert (resumed.l1_weight, resumed.gan_weight) == (50.0, 2.0)
    for a, b in zip(all_weights(first), all_weights(resumed), strict=True):
        np.testing.assert_array_equal(a, b)
    g_optimizer, d_optimizer = resumed.optimizer, resumed.d_optimizer
    resumed.compile(
        g_optimizer=resumed.optimizer,
        d_optimizer=resumed.d_optimizer,
        **settings,
    )
    assert resumed.optimizer is g_optimizer
    assert resumed.d_optimizer is d_optimizer
    assert int(resumed.optimizer.iterations.numpy()) == 2
    resumed.run_eagerly = True
    resumed.fit(dataset(inputs, targets, 2, start=4), epochs=1, verbose=0)

    assert int(resumed.optimizer.iterations.numpy()) == 4
    for a, b in zip(
        all_weights(uninterrupted), all_weights(resumed), strict=True
    ):
        np.testing.assert_array_equal(a, b)


# === tf.distribute ===
MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )
    import keras
    from tests.lbie_tf.flowers import gan_test

    inputs, targets = gan_test.make_data(count=4)
    results = {}
    start = None
    for name in ("default", "mirrored"):
        if name == "default":
            strategy = tf.distribute.get_strategy()
        else:
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
            strategy = tf.distribute.MirroredStrategy(devices=devices)
        with strategy.scope():
            model = gan_test.make_gan(batch_norm_synchronized=True)
            if start is None:
                start = model.get_weights()
            model.set_weights(start)
            # SGD: an update linear in the gradient, so that a missing
            # 1 / replicas factor would double it (Adam would hide it).
            model.compile(
                keras.optimizers.SGD(1e-3), keras.optimizers.SGD(1e-3)
            )
        # The same train_step and replica arithmetic without two traces of
        # the GAN (a minute each); the task checklist trains it under the
        # Mirrored strategy in graph mode.
        model.run_eagerly = True
        history = model.fit(
            gan_test.dataset(inputs, targets, 4), epochs=1, verbose=0
        )
        updates = [
            after - before
            for after, before in zip(model.get_weights(), start)
        ]
        sizes = len(model.generator.weights)
        results[name] = {
            "replicas": strategy.num_replicas_in_sync,
            "history": history.history,
            "generator": np.concatenate(
                [u.ravel() for u in updates[:sizes]]
            ).tolist(),
            "discriminator": np.concatenate(
                [u.ravel() for u in updates[sizes:]]
            ).tolist(),
        }
    with open(sys.argv[1], "w") as file:
        json.dump(results, file)
    """
)


@pytest.mark.slow
def test_mirrored_over_two_cpus_matches_the_default_strategy(tmp_path):
    report = tmp_path / "report.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("TF_CONFIG", None)
    run = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT, str(report)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    results = json.loads(report.read_text())
    default, mirrored = results["default"], results["mirrored"]
    assert (default["replicas"], mirrored["replicas"]) == (1, 2)
    # One epoch of 4 images, global batch 4 (2 per replica): one step. Each
    # replica's losses are divided by 2 and the optimizers sum the
    # replicas' gradients, so the runs agree up to the order of float sums
    # (all-reduced gradients and batch statistics): 2e-4 of the update's
    # norm, measured for the no-text generator. A per-variable or a longer
    # comparison would not do: this 2-channel, 22-batch-norm net is nearly
    # scale invariant and the gradients of its early gammas nearly cancel,
    # so that even permuting the images of a batch on one device moves
    # them by ~20%. A wrong replica scaling (updates off by a factor of 2)
    # misses 1e-2 by far.
    for key in ("d_loss", "g_loss", "l1", "loss"):
        np.testing.assert_allclose(
            mirrored["history"][key], default["history"][key], rtol=1e-5
        )
    for network in ("generator", "discriminator"):
        ours = np.asarray(mirrored[network])
        theirs = np.asarray(default[network])
        error = np.linalg.norm(ours - theirs) / np.linalg.norm(theirs)
        assert error < 1e-2, (network, error)
