"""tf_vesselgan — synthetic, labelled TOF-MRA vessel patches from GANs.

Design card
-----------
What:    Learns image + vessel-label patch pairs (96x96) from real TOF-MRA scans with
         DCGAN / WGAN-GP / WGAN-GP-SN and hands out synthetic pairs that carry the
         predictive information but no patient (Kossen et al., "Synthesizing anonymized
         and labeled TOF-MRA patches for brain vessel segmentation using GANs").
Input:   NIfTI volumes + vessel labels (images/labels folders or nnU-Net v2 layout).
Output:  TFRecord patch shards, trained GAN / U-net run folders, sample files,
         SavedModels in the TF Serving layout, reports.
Stack:   TensorFlow 2.21 + Keras 3 (no tensorflow-addons: it does not import on
         TF 2.21; Keras 3 has SpectralNormalization and GroupNormalization).
Entry:   `vesselgan` console script, also `python -m tf_vesselgan`.
"""
from setuptools import find_packages, setup

# Pinned: these exact versions are what the test-suite ran against.
# `tensorflow` (not `tensorflow-cpu`) because tensorflow-serving-api depends on it.
INSTALL_REQUIRES = [
    "tensorflow==2.21.0",
    "keras==3.15.1",
    "tensorboard==2.21.0",
    "tensorflow-serving-api==2.21.0",
    "keras-tuner==1.4.8",
    "scikit-learn==1.9.1",
    "nibabel==5.4.2",
    "numpy==2.4.6",
    "scipy==1.17.1",
    "PyYAML==6.0.4",
    "matplotlib==3.11.2",
    "tqdm==4.70.1",
    "grpcio==1.85.3",  # the built-in server and client speak TF Serving's gRPC API
    "orjson==3.13.0",  # JSON of large NumPy arrays for the REST API, ~10x faster than json
    "dp-accounting==0.6.0",  # the RDP accountant behind tensorflow-privacy (which cannot install next to TF 2.21)
]

setup(
    name="tf_vesselgan",
    version="0.1.0",
    description="GAN-synthesised, labelled TOF-MRA vessel patches (TensorFlow 2 / Keras 3)",
    long_description=__doc__,
    packages=find_packages(include=["tf_vesselgan", "tf_vesselgan.*"]),
    python_requires=">=3.11,<3.12",
    install_requires=INSTALL_REQUIRES,
    extras_require={"test": ["pytest==9.2.0", "medpy==0.5.2"]},
    entry_points={"console_scripts": ["vesselgan=tf_vesselgan.cli.main:main"]},
    include_package_data=True,
)
