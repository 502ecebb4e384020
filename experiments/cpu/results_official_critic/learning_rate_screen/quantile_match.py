"""Screen variant: a sample set's images mapped so that their pooled intensity histogram
matches the real training patches' (labels unchanged).

usage: python quantile_match.py SAMPLES PATCHES OUT

Real ICBM patches saturate: 0.6 % of their pixels sit at the top of the [-1, 1] range
(1.1 % at the bottom), against 0.02 % of a 30-minute generator's; one global monotone map
(2,001 quantiles of 5,000 real training patches against those of the samples) puts as many
synthetic pixels there.
"""
import json
import sys
from pathlib import Path

import numpy as np

from tf_vesselgan.data.pipeline import labelled_patches
from tf_vesselgan.training.sampling import load_samples

samples, patches, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
image, label = load_samples(samples)
real, _ = labelled_patches(patches, 5000, "train", seed=1)
q = np.linspace(0.0, 1.0, 2001)
mapped = np.interp(image, np.quantile(image, q), np.quantile(real, q)).astype(np.float32)
print(f"pixels at the top: real {(real >= 0.9999).mean():.4f}, samples {(image >= 0.9999).mean():.4f}, "
      f"mapped {(mapped >= 0.9999).mean():.4f}")
out.mkdir(parents=True, exist_ok=True)
np.savez(out / "samples.npz", image=mapped, label=label)
(out / "samples.json").write_text(json.dumps({"n": len(image), "variant": f"{samples}, quantile-matched to {patches}"}))
