"""Optimizers and learning-rate schedules from explicit arguments."""

import keras

SCHEDULES = ("constant", "cosine")


def learning_rate(base_rate, schedule, total_steps):
    """A constant rate, or cosine decay from `base_rate` to 0 over
    `total_steps` training batches.

    Raises:
      ValueError: for an unknown schedule, or a cosine schedule without
        `total_steps`.
    """
    if schedule == "constant":
        return base_rate
    if schedule == "cosine":
        if not total_steps:
            raise ValueError(
                "The 'cosine' learning-rate schedule needs the number of "
                f"training steps, received: {total_steps!r}."
            )
        return keras.optimizers.schedules.CosineDecay(
            base_rate, max(1, int(total_steps))
        )
    raise ValueError(
        f"`train.learning_rate_schedule` must be one of {list(SCHEDULES)}, "
        f"received: {schedule!r}."
    )


def adam(base_rate, schedule, total_steps, beta_1):
    """Adam with the given rate schedule and first-moment decay."""
    return keras.optimizers.Adam(
        learning_rate(base_rate, schedule, total_steps), beta_1=beta_1
    )
