"""Progress of a run: the time left, and the line logged every few seconds."""

from collections.abc import Mapping

import numpy as np
from absl import logging


def estimate_eta(
    epoch: int, epochs: int, schedule, paces: Mapping[str, float], final_s: float | None = 0.0
) -> float | None:
    """Seconds left from `epoch`: the unmeasured epochs at the training pace and the measured
    ones at the measuring pace (`paces["train"]`, `paces["measure"]`: seconds per epoch of calls,
    compiling excluded), and `final_s` for the final network's measurement; None while a pace
    that is still needed is unknown."""
    measured = int(np.sum((np.asarray(schedule) >= epoch) & (np.asarray(schedule) < epochs)))
    trained = epochs - epoch - measured
    if (trained and "train" not in paces) or (measured and "measure" not in paces) or final_s is None:
        return None
    return trained * paces.get("train", 0.0) + measured * paces.get("measure", 0.0) + final_s


def log(epoch: int, epochs: int, metrics_4xR: np.ndarray, eta: float | None) -> None:
    """The progress line after `epoch` of `epochs` epochs: the mean over rows of the loss and
    accuracy of the network after `epoch - 1` epochs (the last one measured), and the ETA."""
    m = metrics_4xR
    logging.info(
        "epoch %d/%d; the network after %d epochs: loss %.4f  acc %.4f  test loss %.4f  test acc %.4f  (mean of %d "
        "rows)  %s",
        *(epoch, epochs, epoch - 1, m[0].mean(), m[1].mean(), m[2].mean(), m[3].mean(), m.shape[1]),
        "ETA once the first calls have run" if eta is None else f"ETA {eta:.0f} s (the final measurement included)",
    )
