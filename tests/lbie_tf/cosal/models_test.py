"""Tests of the CoSaL models: contract shapes, save/reload, batch norm."""

import importlib.util
import pathlib

import keras
import numpy as np
import pytest

from lbie_tf.cosal import models
from lbie_tf.cosal import task as cosal_task

_CONFIG_PATH = (
    pathlib.Path(__file__).parents[3] / "experiments" / "configs" / "cosal.py"
)
_SPEC = importlib.util.spec_from_file_location("cosal_config", _CONFIG_PATH)
cosal_config = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(cosal_config)

VARIANTS = ("t1_noattn", "t1_attn", "t4_attn")


def _inputs(batch=2, seed=0):
    rng = np.random.default_rng(seed)
    image = np.where(rng.random((batch, 48, 48, 3)) < 0.3, 0, 255)
    return {
        "image": image.astype("uint8"),
        "sentences": rng.integers(0, 20, (batch, 9, 3)).astype("int32"),
    }


def _expected_shapes(family, num_steps, attention, batch=2):
    shapes = {"logits": (batch, 48, 48, 7)}
    regions = 36 if family == "paper" else 9
    if attention:
        shapes["attention_weights"] = (batch, regions, 9, num_steps)
    if family == "paper" and num_steps > 1:
        shapes["stop_probabilities"] = (batch, 6, 6, num_steps)
        shapes["stop_step"] = (batch, 6, 6)
    if family == "original" and num_steps > 1:
        shapes["step_logits"] = (batch, num_steps, 48, 48, 8)
        shapes["stop_step"] = (batch, 48, 48)
    return shapes


@pytest.mark.parametrize("family", ["paper", "original"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_contract_shapes_and_keras_round_trip(family, variant, tmp_path):
    config = cosal_config.get_config(f"{family}_{variant}_d4")
    model = models.build_cosal_model(config.model)
    inputs = _inputs()
    outputs = model(inputs, training=False)
    shapes = {key: tuple(value.shape) for key, value in outputs.items()}
    model_config = config.model
    assert shapes == _expected_shapes(
        family, model_config.num_steps, model_config.attention
    )
    assert outputs["logits"].dtype == "float32"
    path = str(tmp_path / "model.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    again = reloaded(inputs, training=False)
    for key in outputs:
        np.testing.assert_allclose(
            np.asarray(again[key]), np.asarray(outputs[key]), atol=1e-5
        )


@pytest.mark.parametrize("cell", ["paper_t4_attn_d4", "original_t4_attn_d4"])
def test_training_step_lowers_loss_and_uses_moving_statistics(cell):
    config = cosal_config.get_config(cell)
    config.train.learning_rate = 3e-3
    model = cosal_task.CosalTask(config).compile(
        models.build_cosal_model(config.model), steps_per_epoch=1
    )
    inputs = _inputs(batch=4, seed=1)
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 7, (4, 48, 48)).astype("uint8")
    key = models.target_output(config.model)
    first = model.train_on_batch(inputs, {key: labels})
    for _ in range(4):
        last = model.train_on_batch(inputs, {key: labels})
    assert np.isfinite(first) and last < first
    # Inference uses moving statistics: an example's prediction does not
    # depend on the rest of its batch.
    alone = model({k: v[:1] for k, v in inputs.items()}, training=False)
    batched = model(inputs, training=False)
    np.testing.assert_allclose(
        np.asarray(alone["logits"][0]),
        np.asarray(batched["logits"][0]),
        atol=1e-4,
    )


def test_normalizes_uint8_images_itself():
    config = cosal_config.get_config("paper_t1_attn_d4")
    model = models.build_cosal_model(config.model)
    normalize = model.get_layer("normalize")
    out = np.asarray(normalize(np.array([[[[0, 255, 51]]]], "uint8")))
    np.testing.assert_allclose(out, [[[[-0.5, 0.5, -0.3]]]], atol=1e-6)


def test_termination_config_reaches_the_gate():
    config = cosal_config.get_config("paper_t4_attn_d4")
    config.model.termination_initial_bias = -1.5
    assert config.model.termination_warmup == pytest.approx(1 / 3)
    model = models.build_cosal_model(config.model, training_steps=90)
    gate = model.get_layer("fusion").termination_gate
    assert float(gate.gate_bias) == -1.5
    assert gate.warmup_steps == 30 and gate.warmup_selection == "uniform"
    config.model.termination_warmup_selection = "last"
    model = models.build_cosal_model(config.model, training_steps=90)
    assert model.get_layer("fusion").termination_gate.warmup_selection == (
        "last"
    )
    # Built only to run (no training length): no warm-up.
    model = models.build_cosal_model(config.model)
    assert model.get_layer("fusion").termination_gate.warmup_steps == 0
    config.model.termination_warmup = 0.0
    model = models.build_cosal_model(config.model, training_steps=90)
    assert model.get_layer("fusion").termination_gate.warmup_steps == 0


def _reference_kept_steps(stop_probabilities, threshold=0.5, margin=1e-3):
    """The gate's inference rule from its stop distribution: the gates are
    g_t = beta_t / (1 - sum_{k<t} beta_k); a region keeps the first step
    t < T with g_t >= threshold, else step T. Also returns where every
    gate is more than `margin` from the threshold (float32 rounding cannot
    flip those decisions)."""
    beta = np.asarray(stop_probabilities, np.float64)
    steps = beta.shape[-1]
    survival = 1.0 - np.cumsum(beta, axis=-1) + beta
    gates = beta / np.maximum(survival, 1e-12)
    kept = np.full(beta.shape[:-1], steps - 1)
    for region in np.ndindex(beta.shape[:-1]):
        for t in range(steps - 1):
            if gates[region][t] >= threshold:
                kept[region] = t
                break
    clear = np.all(np.abs(gates[..., :-1] - threshold) > margin, axis=-1)
    return kept, clear


def test_kept_steps_reads_the_gates_stop_step_and_warmup_keeps_step_t():
    config = cosal_config.get_config("paper_t4_attn_d4")
    # Gates at sigmoid(3) fire at step 1 once the warm-up is over.
    config.model.termination_initial_bias = 3.0
    model = models.build_cosal_model(config.model, training_steps=15)
    gate = model.get_layer("fusion").termination_gate
    outputs = model(_inputs(), training=False)
    assert outputs["stop_step"].dtype == "int32"
    np.testing.assert_array_equal(models.kept_steps(outputs), 3)
    # At the end of the warm-up the gate has had no training yet.
    gate.step.assign(5)
    outputs = model(_inputs(), training=False)
    np.testing.assert_array_equal(models.kept_steps(outputs), 3)
    gate.step.assign(6)
    outputs = model(_inputs(), training=False)
    kept = models.kept_steps(outputs)
    assert kept.shape == (2, 6, 6) and kept.dtype == np.int64
    want, clear = _reference_kept_steps(outputs["stop_probabilities"])
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(kept[clear], want[clear])
    assert np.mean(kept == 0) > 0.5


def test_kept_steps_of_the_original_and_one_step_models():
    config = cosal_config.get_config("original_t4_attn_d4")
    outputs = models.build_cosal_model(config.model)(_inputs(), training=False)
    np.testing.assert_array_equal(
        models.kept_steps(outputs), np.asarray(outputs["stop_step"])
    )
    assert models.kept_steps(outputs).shape == (2, 48, 48)
    config = cosal_config.get_config("paper_t1_attn_d4")
    outputs = models.build_cosal_model(config.model)(_inputs(), training=False)
    assert models.kept_steps(outputs) is None


def test_bad_model_configs_raise():
    config = cosal_config.get_config("paper_t4_attn_d4")
    config.model.family = "vgg"
    with pytest.raises(ValueError, match="family"):
        models.build_cosal_model(config.model)
    config = cosal_config.get_config("paper_t1_noattn_d4")
    config.model.num_steps = 4
    with pytest.raises(ValueError, match="num_steps"):
        models.build_cosal_model(config.model)
    config = cosal_config.get_config("paper_t4_attn_d4")
    config.model.termination_warmup = 1.0
    with pytest.raises(ValueError, match="termination_warmup"):
        models.build_cosal_model(config.model, training_steps=10)
    config = cosal_config.get_config("original_t4_attn_d4")
    config.model.image_size = 96
    with pytest.raises(ValueError, match="image_size"):
        models.build_cosal_model(config.model)
    assert models.target_output(config.model) == "step_logits"
    config = cosal_config.get_config("original_t1_attn_d8")
    config.model.decoder = "unet"
    with pytest.raises(ValueError, match="decoder.*classifier_upsampling"):
        models.build_cosal_model(config.model)


@pytest.mark.parametrize("variant", VARIANTS)
def test_original_with_the_papers_head(variant, tmp_path):
    config = cosal_config.get_config(f"original_{variant}_d4")
    assert config.model.decoder == "classifier_upsampling"
    model = models.build_cosal_model(config.model)
    decoder = model.get_layer("decoder")
    assert [layer.name for layer in decoder.layers[1:]] == [
        "classifier_hidden",
        "classifier",
        "upsampling",
    ]
    # The deconvolution starts bilinear: a constant map stays constant.
    upsampling = decoder.get_layer("upsampling")
    channels = upsampling.filters
    constant = np.ones((1, 3, 3, channels), "float32")
    upsampled = np.asarray(upsampling(constant))
    assert upsampled.shape == (1, 48, 48, channels)
    np.testing.assert_allclose(upsampled[0, 8:40, 8:40], 1.0, atol=1e-5)
    _check_shapes_and_round_trip(model, config.model, tmp_path)


@pytest.mark.parametrize("variant", VARIANTS)
def test_original_with_the_released_decoder(variant, tmp_path):
    config = cosal_config.get_config(f"original_{variant}_d4")
    config.model.decoder = "deconv"
    model = models.build_cosal_model(config.model)
    names = [layer.name for layer in model.get_layer("decoder").layers]
    assert names[1:4] == ["deconv1", "deconv1_bn", "deconv1_relu"]
    assert names[-1] == "output_conv"
    _check_shapes_and_round_trip(model, config.model, tmp_path)


def test_original_decoder_without_batch_norm():
    from lbie_tf.cosal.released_model import build_decoder

    decoder = build_decoder((3, 3, 256), 16, 8, batch_norm=False)
    names = [layer.name for layer in decoder.layers]
    assert not [name for name in names if name.endswith("_bn")]
    assert decoder.get_layer("deconv1").use_bias
    assert decoder.output.shape == (None, 48, 48, 8)


def _check_shapes_and_round_trip(model, model_config, tmp_path):
    inputs = _inputs()
    outputs = model(inputs, training=False)
    shapes = {key: tuple(value.shape) for key, value in outputs.items()}
    assert shapes == _expected_shapes(
        "original", model_config.num_steps, model_config.attention
    )
    path = str(tmp_path / "model.keras")
    model.save(path)
    again = keras.saving.load_model(path)(inputs, training=False)
    np.testing.assert_allclose(
        np.asarray(again["logits"]), np.asarray(outputs["logits"]), atol=1e-5
    )


def test_original_t4_step_logits_decode_each_step_of_each_example():
    # Stacking the T steps into the batch for one decoder pass must not mix
    # examples or steps: step_logits[b, t] is the decoder applied to the
    # fusion's step-t state of example b alone (inference-mode batch norm
    # treats every sample on its own).
    config = cosal_config.get_config("original_t4_attn_d4")
    model = models.build_cosal_model(config.model)
    inputs = _inputs(batch=3, seed=1)
    step_logits = np.asarray(model(inputs, training=False)["step_logits"])
    fusion = model.get_layer("fusion")
    # The fusion's outputs come back flattened: the step states are the
    # rank-5 one (B, T, 3, 3, 128).
    (states,) = [x for x in fusion.output if len(x.shape) == 5]
    states_model = keras.Model(model.inputs, states)
    step_states = np.asarray(states_model(inputs, training=False))
    decoder = model.get_layer("decoder")
    scale = np.abs(step_logits).max()
    for b in range(3):
        for t in range(config.model.num_steps):
            expected = np.asarray(
                decoder(step_states[b : b + 1, t], training=False)
            )[0]
            np.testing.assert_allclose(
                step_logits[b, t], expected, rtol=1e-3, atol=1e-4 * scale
            )
    # Steps and examples differ, so a mix-up could not pass unnoticed.
    steps_apart = np.abs(step_logits[:, 0] - step_logits[:, -1]).max()
    examples_apart = np.abs(step_logits[0] - step_logits[1]).max()
    assert min(steps_apart, examples_apart) > 1e-2 * scale


def test_compile_model_needs_the_epoch_length_of_a_decaying_schedule():
    config = cosal_config.get_config("paper_t1_attn_d8")
    config.train.learning_rate_schedule = "cosine"
    model = models.build_cosal_model(config.model)
    task = cosal_task.CosalTask(config)
    with pytest.raises(ValueError, match="number of training steps"):
        task.compile(model)
    compiled = task.compile(model, steps_per_epoch=50)
    schedule = compiled.optimizer.get_config()["learning_rate"]
    assert schedule["config"]["decay_steps"] == config.train.epochs * 50
