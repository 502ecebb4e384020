"""The privacy report states the generator's differential privacy, or that it has none."""
from tf_vesselgan.privacy.report import dp_line


def test_the_report_states_epsilon_delta_or_no_guarantee():
    assert "none" in dp_line("not DP") and "not a guarantee" in dp_line("not DP")
    line = dp_line({"epsilon": 2.3456, "delta": 1e-5, "noise_multiplier": 1.1, "l2_clip": 1.0,
                    "sampling_probability": 0.008, "critic_updates": 5000, "accountant": "dp-accounting RDP"})
    assert "(ε = 2.35, δ = 1e-05)-DP" in line and "5000 critic updates" in line and "q = 0.008" in line
