"""Helpers for the ReferIt tests: JSON files and the expected example order."""

import json

SEED = 5
COUNTS = dict(num_train_images=6, num_val_images=2, num_test_images=4)


def read_json(root, name):
    """The parsed JSON file `name` of a download."""
    return json.loads((root / name).read_text(encoding="utf-8"))


def write_json(root, name, content):
    """Replaces the JSON file `name` of a download."""
    (root / name).write_text(json.dumps(content), encoding="utf-8")


def expected_order(root, split):
    """(imcrop name, index, expression) in Hu et al.'s test order.

    Written from the rule, independently of layout.ordered_regions:
    images by first appearance among the query keys, an image's regions
    in referit_imcrop.json order (queried ones only), then expressions.
    """
    queries = read_json(root, f"referit_query_{split}.json")
    imcrops = read_json(root, "referit_imcrop.json")
    images = []
    for name in queries:
        image_id = name.split("_")[0]
        if image_id not in images:
            images.append(image_id)
    order = []
    for image_id in images:
        for name in imcrops[f"{image_id}.jpg"]:
            for index, expression in enumerate(queries.get(name, [])):
                order.append((name, index, expression))
    return order
