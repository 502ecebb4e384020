"""The report's Table 2 states each U-net's test Dice as a ratio to the real-trained one's."""
from tf_vesselgan.experiments.report import _table2_section


def _row(unet, dice, **extra):
    return {"unet": unet, "test_dice": dice, "test_dice_sd": 0.01, "test_hd95_mm": 7.0, "test_hd95_mm_sd": 0.5,
            "test_csv": f"eval_{unet}_test/per_patient.csv", **extra}


def test_the_ratio_column_divides_by_the_real_u_nets_test_dice():
    lines = _table2_section([_row("real", 0.684), _row("synthetic_dcgan", 0.533)])
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in lines if line.startswith("| ")}
    header = rows["U-net trained on"]
    col = next(i for i, h in enumerate(header) if h.startswith("test Dice ÷"))
    assert rows["real"][col] == "1.00" and rows["synthetic_dcgan"][col] == "0.78"  # 0.533 / 0.684
    assert all(len(r) == len(header) for r in rows.values())


def test_without_a_real_row_or_with_a_real_dice_of_zero_there_is_no_ratio():
    for t2 in ([_row("synthetic_dcgan", 0.5)], [_row("real", 0.0), _row("synthetic_dcgan", 0.5)]):
        line = next(l for l in _table2_section(t2) if l.startswith("| synthetic_dcgan"))
        assert line.split(" | ")[5] == "–"
