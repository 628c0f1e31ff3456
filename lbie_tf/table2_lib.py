"""Paper Table 2 (CoSaL average IoU): its numbers, cells and grid runner."""

# Paper Table 2: average IoU by (T, attention, number of direct sentences).
PAPER_TABLE2 = {
    (1, False, 4): 0.2107,
    (1, False, 6): 0.2499,
    (1, False, 8): 0.3186,
    (1, True, 4): 0.4030,
    (1, True, 6): 0.5220,
    (1, True, 8): 0.7097,
    (4, True, 4): 0.5033,
    (4, True, 6): 0.5313,
    (4, True, 8): 0.7017,
}
FAMILIES = ("paper", "original")
VARIANTS = ((1, False), (1, True), (4, True))
NUM_DIRECT = (4, 6, 8)


def paper_iou(num_steps, attention, num_direct):
    """The paper's Table 2 number for a cell, or None if it has none."""
    return PAPER_TABLE2.get((int(num_steps), bool(attention), int(num_direct)))


def cell_name(family, num_steps, attention, num_direct):
    """The config argument of a cell, e.g. "paper_t4_attn_d8"."""
    attention_part = "attn" if attention else "noattn"
    return f"{family}_t{num_steps}_{attention_part}_d{num_direct}"


def parse_cell_name(name):
    """Inverse of `cell_name`: returns (family, num_steps, attention, direct).

    Raises:
      ValueError: if `name` is not of the form
        `<paper|original>_t<T>_<attn|noattn>_d<num_direct>`.
    """
    parts = name.split("_")
    allowed = (
        "<paper|original>_t<T>_<attn|noattn>_d<num_direct>, "
        "e.g. paper_t4_attn_d8"
    )
    if (
        len(parts) != 4
        or parts[0] not in FAMILIES
        or not parts[1].startswith("t")
        or not parts[1][1:].isdigit()
        or parts[2] not in ("attn", "noattn")
        or not parts[3].startswith("d")
        or not parts[3][1:].isdigit()
    ):
        raise ValueError(
            f"Config argument {name!r} is not a Table 2 cell name; "
            f"expected {allowed}."
        )
    num_steps, num_direct = int(parts[1][1:]), int(parts[3][1:])
    if num_steps < 1 or not 1 <= num_direct <= 9:
        raise ValueError(
            f"Config argument {name!r}: T must be >= 1 and num_direct in 1..9."
        )
    if num_steps > 1 and parts[2] == "noattn":
        raise ValueError(
            f"Config argument {name!r}: a model without attention has T = 1."
        )
    return parts[0], num_steps, parts[2] == "attn", num_direct


def all_cells():
    """The 18 cell names: family x (T1 no attention, T1, T4) x 4/6/8."""
    return [
        cell_name(family, num_steps, attention, num_direct)
        for family in FAMILIES
        for num_steps, attention in VARIANTS
        for num_direct in NUM_DIRECT
    ]
