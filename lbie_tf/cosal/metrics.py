"""CoSaL metrics: colour mean IoU and the paper's 9 shapes + background IoU."""

import keras
from keras import ops


def _predicted_labels(y_true, y_pred):
    """Accepts predicted labels (B, H, W) or logits (B, H, W, C)."""
    y_pred = ops.convert_to_tensor(y_pred)
    if len(y_pred.shape) == len(ops.shape(y_true)) + 1:
        y_pred = ops.argmax(y_pred, axis=-1)
    return ops.cast(y_pred, "int32")


@keras.saving.register_keras_serializable(package="lbie")
class ColorMeanIoU(keras.metrics.Metric):
    """Mean IoU over the colour classes from a streaming confusion matrix.

    DEVIATIONS.md point 6 (the released code's metric): per class c,
    IoU_c = TP_c / (TP_c + FP_c + FN_c) with counts summed over every batch
    seen; the result averages the classes whose union is not empty (as
    `tf.metrics.mean_iou` did). Classes: 0 background, 1..C colours.
    """

    def __init__(self, num_classes=7, name="miou_colors", dtype=None):
        if num_classes < 2:
            raise ValueError(
                "Argument `num_classes` must be at least 2, "
                f"received: {num_classes}."
            )
        super().__init__(name=name, dtype=dtype)
        self.num_classes = num_classes
        self.confusion_matrix = self.add_variable(
            shape=(num_classes, num_classes),
            initializer="zeros",
            dtype="float64",
            name="confusion_matrix",
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Adds a batch: labels (B, H, W) and labels or logits."""
        del sample_weight
        y_true = ops.cast(y_true, "int32")
        y_pred = _predicted_labels(y_true, y_pred)
        pairs = ops.reshape(y_true * self.num_classes + y_pred, (-1,))
        counts = ops.bincount(pairs, minlength=self.num_classes**2)
        counts = ops.reshape(
            counts[: self.num_classes**2], (self.num_classes, self.num_classes)
        )
        self.confusion_matrix.assign_add(ops.cast(counts, "float64"))

    def class_ious(self):
        """IoU of each class (rows: true, columns: predicted); 0 if empty."""
        matrix = self.confusion_matrix
        true_positives = ops.diagonal(matrix)
        union = ops.sum(matrix, axis=0) + ops.sum(matrix, axis=1)
        union = union - true_positives
        return ops.divide_no_nan(true_positives, union), union

    def result(self):
        ious, union = self.class_ious()
        present = ops.cast(union > 0, "float64")
        value = ops.divide_no_nan(ops.sum(ious * present), ops.sum(present))
        return ops.cast(value, "float32")

    def reset_state(self):
        self.confusion_matrix.assign(
            ops.zeros((self.num_classes, self.num_classes), "float64")
        )

    def get_config(self):
        config = super().get_config()
        config.update({"num_classes": self.num_classes})
        return config


@keras.saving.register_keras_serializable(package="lbie")
class ShapeAverageIoU(keras.metrics.Metric):
    """The paper's average IoU over 9 shapes + background (section 4.1).

    Our reading of section 4.1 (README, Metrics): for shape k (in whichever
    cell of the `grid_size` x `grid_size` grid holds it) with true colour c_k,
    I_k = #pixels of shape k predicted c_k and
    U_k = #(pixels of shape k) | (pixels of its cell predicted c_k);
    background: I_0 = #background pixels predicted 0 and
    U_0 = #(background) | (predicted 0). I and U are summed over every batch
    seen; the result averages the 10 ratios I_k / U_k. Each cell must hold
    exactly one shape, as in CoSaL.

    `update_state(color_labels, shape_labels, y_pred)`: colour labels and
    shape labels (0 background, shape id + 1) of shape (B, H, W), and
    predicted labels (B, H, W) or logits (B, H, W, C).
    """

    def __init__(
        self, num_shapes=9, grid_size=3, name="iou_shapes", dtype=None
    ):
        if num_shapes < 1:
            raise ValueError(
                "Argument `num_shapes` must be at least 1, "
                f"received: {num_shapes}."
            )
        if grid_size < 1:
            raise ValueError(
                "Argument `grid_size` must be at least 1, "
                f"received: {grid_size}."
            )
        super().__init__(name=name, dtype=dtype)
        self.num_shapes = num_shapes
        self.grid_size = grid_size
        self.intersections = self.add_variable(
            shape=(num_shapes + 1,),
            initializer="zeros",
            dtype="float64",
            name="intersections",
        )
        self.unions = self.add_variable(
            shape=(num_shapes + 1,),
            initializer="zeros",
            dtype="float64",
            name="unions",
        )

    def _per_cell(self, labels, height, width):
        """Largest label of each cell, spread back over the cell's pixels."""
        grid = self.grid_size
        cell_h, cell_w = height // grid, width // grid
        cells = ops.reshape(labels, (-1, grid, cell_h, grid, cell_w))
        cells = ops.max(cells, axis=(2, 4))
        cells = ops.repeat(cells, cell_h, axis=1)
        return ops.repeat(cells, cell_w, axis=2)

    def update_state(self, color_labels, shape_labels, y_pred):
        color_labels = ops.cast(color_labels, "int32")
        shape_labels = ops.cast(shape_labels, "int32")
        predicted = _predicted_labels(color_labels, y_pred)
        height, width = color_labels.shape[1], color_labels.shape[2]
        if height % self.grid_size or width % self.grid_size:
            raise ValueError(
                f"Image size {height}x{width} is not a multiple of "
                f"`grid_size`={self.grid_size}."
            )
        # One shape per cell: the largest label inside a cell is its shape id
        # (and its colour), so every pixel knows the shape its cell holds.
        cell_shape = self._per_cell(shape_labels, height, width)
        cell_color = self._per_cell(color_labels, height, width)
        is_shape = shape_labels > 0
        intersection = ops.where(
            is_shape, predicted == color_labels, predicted == 0
        )
        shape_union = ops.logical_or(
            is_shape,
            ops.logical_and(predicted == cell_color, cell_shape > 0),
        )
        background_union = ops.logical_or(
            ops.logical_not(is_shape), predicted == 0
        )
        length = self.num_shapes + 1
        intersections = ops.bincount(
            ops.reshape(shape_labels, (-1,)),
            weights=ops.reshape(ops.cast(intersection, "float32"), (-1,)),
            minlength=length,
        )[:length]
        unions = ops.bincount(
            ops.reshape(cell_shape, (-1,)),
            weights=ops.reshape(ops.cast(shape_union, "float32"), (-1,)),
            minlength=length,
        )[:length]
        background = ops.sum(ops.cast(background_union, "float32"))
        unions = ops.concatenate([ops.reshape(background, (1,)), unions[1:]])
        self.intersections.assign_add(ops.cast(intersections, "float64"))
        self.unions.assign_add(ops.cast(unions, "float64"))

    def class_ious(self):
        """IoU of the background (index 0) and of each shape (1..9)."""
        return ops.divide_no_nan(self.intersections, self.unions)

    def result(self):
        present = ops.cast(self.unions > 0, "float64")
        value = ops.divide_no_nan(
            ops.sum(self.class_ious() * present), ops.sum(present)
        )
        return ops.cast(value, "float32")

    def reset_state(self):
        length = self.num_shapes + 1
        self.intersections.assign(ops.zeros((length,), "float64"))
        self.unions.assign(ops.zeros((length,), "float64"))

    def get_config(self):
        config = super().get_config()
        config.update(
            {"num_shapes": self.num_shapes, "grid_size": self.grid_size}
        )
        return config


def describe_metrics():
    """One line per metric, for README and TensorBoard text summaries."""
    return {
        "miou_colors": (
            "mean IoU over the colour classes (background + C colours), "
            "streaming confusion matrix over the whole test split "
            "(released code)"
        ),
        "iou_shapes": (
            "average IoU over 9 shapes + background, I and U summed over "
            "the whole test split, then the 10 ratios averaged (paper)"
        ),
    }
