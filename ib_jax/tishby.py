"""The 12-bit binary task of Shwartz-Ziv & Tishby (2017), embedded: no download.

The task's file `var_u.mat` (IDNNs repository) lists all 2**12 binary patterns in counting
order, most-significant bit first, with one binary label per pattern. The patterns are
regenerated here; the 4,096 labels are stored below as packed bits (`tests/tishby_test.py`
checks both against the original file).
"""

import numpy as np

NUM_PATTERNS = 4096
NUM_BITS = 12

# np.packbits of var_u.mat's `y` (4,096 labels, big-endian bit order), as hex.
_LABELS_HEX = (
    "0000000000000003000000030001173f000000010001051f0000011705175f7f0000000300000017"
    "000001330013177f000000030007073f0000013f15177f7f000000030000010f000000170007177f"
    "0001000f050f0f7f0007073f175f7fff0003003f0007033f0013033f003f3fff001f073f077f0fff"
    "003f073f5f7f7fff0000000000000007000000130101177f000000070505175f00001517555f7f7f"
    "000000130000003f001311331113777f0017003f155f5f7f1517153f555f7f7f000000070007050f"
    "0000003f05075f7f051f077f5f5f5fff155f5f7f5f5fffff013f037f057f0fff117f33ff557f7fff"
    "5fff7fff7fffffff7fff7fffffffffff0000000100000117000111371117777f000000030105171f"
    "0111173757577fff000100330013133f1133337f17777fff001300331517173f1133777f77777fff"
    "000000030000013f0013133f15177f7f0007000f050f5f7f1517173f5f5f7fff0037133f003f133f"
    "137f33ff777f7fff177f17ff5f7f5fff777f77ff7f7f7fff00000013000015171111177755777f7f"
    "0115151755555f5f555577777f7fffff1137137f1577777f777777ff7777ffff577f777f7f7f7f7f"
    "77ff77ffffffffff0017003f1517153f1577777f55777f7f577f5f7f5fff5fff7f7f7f7fffffffff"
    "77ff7fff7fff7fff7fffffffffffffffffffffffffffffffffffffffffffffff"
)


def patterns_and_labels() -> tuple[np.ndarray, np.ndarray]:
    """Returns the task as in var_u.mat: patterns [4096, 12] uint8 in {0, 1}, labels [4096] uint8.

    Row r of the patterns is the 12-bit binary form of r, most-significant bit first.
    """
    rows_N = np.arange(NUM_PATTERNS)
    shifts_B = np.arange(NUM_BITS - 1, -1, -1)
    patterns_NxB = ((rows_N[:, None] >> shifts_B[None, :]) & 1).astype(np.uint8)
    labels_N = np.unpackbits(np.frombuffer(bytes.fromhex(_LABELS_HEX), dtype=np.uint8))
    return patterns_NxB, labels_N
