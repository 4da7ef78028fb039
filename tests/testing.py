"""Shared test helpers: where the offline data lives, and tiny configurations."""

import os
import pathlib

REPO = pathlib.Path(__file__).resolve().parent.parent
# The offline copies beside the repository (CI clones the repo next to shared/).
DATA_DIR = pathlib.Path(os.environ.get("IB_JAX_TEST_DATA", REPO.parent / "shared" / "data"))
VAR_U_MAT = DATA_DIR / "tishby" / "var_u.mat"


def require_data() -> None:
    """Fails (never skips) when the offline data is missing: the tests must run on it."""
    missing = [p for p in (DATA_DIR / "MNIST" / "raw", VAR_U_MAT) if not p.exists()]
    if missing:
        raise FileNotFoundError(f"test data missing: {missing}; set IB_JAX_TEST_DATA to the shared data folder")
