"""ReferIt's segmentation scores as Hu et al. 2016 computed them: overall
IoU and precision@0.5..0.9, plus the mean IoU."""

import numpy as np

# The IoU thresholds of precision@k (Hu et al. 2016; the paper, section 4.2
# and table 3). A pair hits at I / U >= k, as Hu et al.'s evaluation code
# compares, where the paper's text says "above".
PRECISION_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)


def precision_key(threshold):
    """The result key of precision@`threshold`, e.g. "precision@0.5"."""
    return f"precision@{threshold}"


def intersection_and_union(prediction, mask):
    """|prediction AND mask| and |prediction OR mask| (Python ints) of two
    same-shaped maps, non-zero = object.

    Raises:
      ValueError: the shapes differ (both are named).
    """
    prediction = np.asarray(prediction).astype(bool)
    mask = np.asarray(mask).astype(bool)
    if prediction.shape != mask.shape:
        raise ValueError(
            f"prediction and mask shapes differ: {prediction.shape} vs "
            f"{mask.shape}."
        )
    intersection = int(np.count_nonzero(prediction & mask))
    union = int(np.count_nonzero(prediction | mask))
    return intersection, union


class ReferitScores:
    """Accumulates Hu et al.'s scores over (image, expression) pairs.

    Each pair is scored at the image's original resolution (the prediction
    brought back by `input_pipeline.prediction_to_original`), with
    I = |pred AND mask| and U = |pred OR mask|:
    - overall_iou = sum(I) / sum(U) over all pairs (Hu et al.'s "overall
      IoU", the paper's table 3 "IoU");
    - precision@k = the share of pairs with I / U >= k, k in 0.5 .. 0.9;
    - mean_iou = the mean of the pairs' I / U (Hu et al. did not report it).

    A pair whose union is empty (empty prediction and empty mask) counts in
    num_pairs and misses every threshold, as the original's 0 / 0 = nan
    compared false; for mean_iou its IoU is 0, so that mean_iou stays the
    average of what precision@k thresholds (a pair that misses every k adds
    0) and a degenerate pair with no object cannot raise the score
    (DEVIATIONS.md, "ReferIt mean IoU"). ReferIt's masks are never empty,
    so this decides nothing on the real test split. When every union is
    empty, overall_iou is 0 rather than the original's nan, so that the
    result is always valid JSON.

    All values are fractions in [0, 1], not percentages.
    """

    def __init__(self):
        self.reset()

    def reset(self):
        self.num_pairs = 0
        self.total_intersection = 0
        self.total_union = 0
        self.sum_iou = 0.0
        self.hits = [0] * len(PRECISION_THRESHOLDS)

    def update(self, prediction, mask):
        """Adds one pair: `prediction` and `mask` of the same shape (bool or
        numeric, non-zero = object). Returns its (I, U)."""
        intersection, union = intersection_and_union(prediction, mask)
        self.num_pairs += 1
        self.total_intersection += intersection
        self.total_union += union
        if union > 0:
            iou = intersection / union
            self.sum_iou += iou
            for index, threshold in enumerate(PRECISION_THRESHOLDS):
                if iou >= threshold:
                    self.hits[index] += 1
        return intersection, union

    def result(self):
        """{num_pairs, overall_iou, precision@0.5 .. precision@0.9,
        mean_iou}.

        Raises:
          ValueError: no pair was added.
        """
        if self.num_pairs == 0:
            raise ValueError("ReferitScores.result(): no pair was added.")
        results = {
            "num_pairs": self.num_pairs,
            "overall_iou": (
                self.total_intersection / self.total_union
                if self.total_union
                else 0.0
            ),
        }
        for threshold, hits in zip(
            PRECISION_THRESHOLDS, self.hits, strict=True
        ):
            results[precision_key(threshold)] = hits / self.num_pairs
        results["mean_iou"] = self.sum_iou / self.num_pairs
        return results
