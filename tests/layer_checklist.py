"""The shared checklist that every public layer in keras_layers must pass."""

import os
import tempfile

import keras
import numpy as np


def _as_list(x):
    if isinstance(x, (list, tuple)):
        return list(x)
    return [x]


def _build_model(layer, input_arrays, call_kwargs, call_fn):
    symbolic = [
        keras.Input(shape=a.shape[1:], batch_size=None, dtype=a.dtype.name)
        for a in input_arrays
    ]
    if call_fn is None:
        args = symbolic if len(symbolic) > 1 else symbolic[0]
        outputs = layer(args, **call_kwargs)
    else:
        outputs = call_fn(layer, symbolic)
    return keras.Model(symbolic, outputs)


def _flatten(outputs):
    if isinstance(outputs, dict):
        return [np.asarray(outputs[k]) for k in sorted(outputs)]
    if isinstance(outputs, (list, tuple)):
        return [np.asarray(o) for o in outputs]
    return [np.asarray(outputs)]


def run_layer_checklist(
    layer_factory,
    inputs,
    expected_output_shapes,
    call_kwargs=None,
    call_fn=None,
    training_changes_output=False,
    fit=True,
    atol=1e-5,
):
    """Runs the five checks every public layer must pass.

    Args:
      layer_factory: zero-argument callable returning a fresh layer.
      inputs: a NumPy array or a list of arrays (the layer's positional input,
        passed as a list when there are several, unless `call_fn` is given).
      expected_output_shapes: a shape tuple, or a list of them in the order of
        the layer's flattened outputs (dict outputs are sorted by key).
      call_kwargs: extra keyword arguments for the call.
      call_fn: optional `(layer, symbolic_inputs) -> outputs` for layers whose
        call signature takes several named tensors.
      training_changes_output: whether `training=True` is expected to change
        the output for the same inputs (dropout, Gumbel sampling, batch
        statistics); with a fixed seed the layer must still be reproducible.
      fit: whether to run the one-step `fit` check.
      atol: tolerance of the equality checks.
    """
    call_kwargs = call_kwargs or {}
    input_arrays = _as_list(inputs)

    # 1. Config round trip.
    layer = layer_factory()
    model = _build_model(layer, input_arrays, call_kwargs, call_fn)
    config = layer.get_config()
    clone = layer.__class__.from_config(config)
    assert clone.get_config() == config, (clone.get_config(), config)

    # 2. Output shapes.
    outputs = _flatten(model(input_arrays, training=False))
    shapes = expected_output_shapes
    if isinstance(shapes, tuple) and (not shapes or isinstance(shapes[0], int)):
        shapes = [shapes]
    assert [tuple(o.shape) for o in outputs] == [tuple(s) for s in shapes], (
        [o.shape for o in outputs],
        shapes,
    )

    # 3. .keras save and reload gives equal outputs.
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "layer_model.keras")
        model.save(path)
        reloaded = keras.saving.load_model(path)
    reloaded_outputs = _flatten(reloaded(input_arrays, training=False))
    for a, b in zip(outputs, reloaded_outputs, strict=True):
        np.testing.assert_allclose(a, b, atol=atol, rtol=1e-5)

    # 4. Training versus inference with a fixed seed.
    train_a = _flatten(model(input_arrays, training=True))
    if training_changes_output:
        fresh = layer_factory()
        fresh_model = _build_model(fresh, input_arrays, call_kwargs, call_fn)
        fresh_model.set_weights(model.get_weights())
        train_b = _flatten(fresh_model(input_arrays, training=True))
        for a, b in zip(train_a, train_b, strict=True):
            np.testing.assert_allclose(a, b, atol=atol, rtol=1e-5)
        assert any(
            not np.allclose(a, b, atol=atol)
            for a, b in zip(train_a, outputs, strict=True)
        ), "training=True was expected to change the output"
    else:
        for a, b in zip(train_a, outputs, strict=True):
            np.testing.assert_allclose(a, b, atol=atol, rtol=1e-5)

    # 5. One fit step on a regression target runs and gives a finite loss.
    if fit:
        targets = [np.zeros_like(o, dtype="float32") for o in outputs]
        float_outputs = all(o.dtype.kind == "f" for o in outputs)
        if float_outputs and model.trainable_weights:
            model.compile(optimizer="sgd", loss="mse")
            fit_targets = targets if len(targets) > 1 else targets[0]
            if isinstance(model.output, dict):
                fit_targets = {
                    k: t
                    for k, t in zip(sorted(model.output), targets, strict=True)
                }
            history = model.fit(
                input_arrays if len(input_arrays) > 1 else input_arrays[0],
                fit_targets,
                epochs=1,
                batch_size=len(input_arrays[0]),
                verbose=0,
            )
            assert np.isfinite(history.history["loss"][0])
    return model
