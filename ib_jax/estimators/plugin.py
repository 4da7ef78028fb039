"""What the plug-in estimators (`binned`, `adaptive`, `exact`) share beyond their row ids: their
bootstrap, permutation null and convergence subsets, counted as weights on one sorted ranking of
the ids (`PlugIn`, `plugin_counts`), never as resampled copies."""

import jax
import jax.numpy as jnp

from ib_jax.estimators import corrections


def label_bits(num_classes: int) -> int:
    """Bits that hold a label below a row id in one sort key."""
    return max(1, (num_classes - 1).bit_length())


def _run_ids(sorted_keys):
    """Each element's run index [..., N] (int32) among the runs of equal values of sorted keys."""
    first = jnp.concatenate(
        [jnp.ones_like(sorted_keys[..., :1], bool), sorted_keys[..., 1:] != sorted_keys[..., :-1]], axis=-1
    )
    return jnp.cumsum(first, axis=-1, dtype=jnp.int32) - 1


def _run_counts(weights, run_ids):
    """Each run's total weight [..., N] (zeros past the last run) of weights [..., N] in the
    runs' order: one sorted segment sum per row."""
    n = weights.shape[-1]
    total = jax.vmap(lambda w, r: jax.ops.segment_sum(w, r, n, indices_are_sorted=True))
    flat_w, flat_r = weights.reshape(-1, n), jnp.broadcast_to(run_ids, weights.shape).reshape(-1, n)
    return total(flat_w, flat_r).reshape(weights.shape)


def plugin_counts(ids_BxN, bad_B, labels, num_classes: int, bias_correction: str, cells: float):
    """The counting of a plug-in estimator from its row ids, for any weights on the samples and
    for permuted labels: returns (`weighted(weights [W, N] or [W, B, N]) -> (I(X;T), I(T;Y))
    [W, B]`, `permuted(permutations [P, N]) -> I(T;Y) [P, B]`), float32, NaN where `bad_B`. The
    rows are sorted once by T and once by (T, Y); a weighting is summed over each run of that
    order (a sorted segment sum: no resampled copy), a permutation of the labels is one more
    sort of the (T, permuted Y) keys; each entropy comes from its counts with the
    estimate's own correction (`corrections.entropy_bits`). A bootstrap resample is its
    multiplicities, a convergence subset its 0/1 mask."""
    b, n = ids_BxN.shape
    k = num_classes
    bits = label_bits(k)
    y = jnp.broadcast_to(labels, (b, n)).astype(jnp.int32)
    iota = jnp.broadcast_to(jnp.arange(n, dtype=jnp.int32), (b, n))
    keys_t, order_t = jax.lax.sort((ids_BxN, iota), dimension=1, num_keys=1)
    keys_ty, order_ty = jax.lax.sort(((ids_BxN << bits) | y.astype(jnp.uint64), iota), dimension=1, num_keys=1)
    runs_t, runs_ty = _run_ids(keys_t), _run_ids(keys_ty)
    onehot = (y[..., None] == jnp.arange(k, dtype=jnp.int32)).astype(jnp.float64)  # [B, N, K]
    nan = jnp.float64(jnp.nan)

    def entropy(counts, alphabet):
        return corrections.entropy_bits(counts, bias_correction, alphabet)

    def finish(h_t, h_y, h_ty):
        i_ty = jnp.maximum(h_t + h_y - h_ty, 0.0)
        return jnp.where(bad_B, nan, h_t).astype(jnp.float32), jnp.where(bad_B, nan, i_ty).astype(jnp.float32)

    def weighted(weights):
        w = weights.astype(jnp.float64)
        w = jnp.broadcast_to(w if w.ndim == 3 else w[:, None, :], (w.shape[0], b, n))
        h_t = entropy(_run_counts(jnp.take_along_axis(w, order_t[None], axis=-1), runs_t), cells)
        h_ty = entropy(_run_counts(jnp.take_along_axis(w, order_ty[None], axis=-1), runs_ty), cells * k)
        h_y = entropy(jnp.einsum("wbn,bnk->wbk", w, onehot), k)
        return finish(h_t, h_y, h_ty)

    def permuted(permutations_PxN):
        ones = jnp.ones((b, n), jnp.float64)
        h_t = entropy(_run_counts(ones, runs_t), cells)
        h_y = entropy(jnp.sum(onehot, axis=1), k)
        y_p = jnp.take(y, permutations_PxN, axis=1).transpose(1, 0, 2)  # [P, B, N]
        keys = jnp.sort((ids_BxN[None] << bits) | y_p.astype(jnp.uint64), axis=-1)  # no payload: several times faster
        h_ty = entropy(_run_counts(jnp.ones(keys.shape, jnp.float64), _run_ids(keys)), cells * k)
        return finish(h_t, h_y, h_ty)[1]

    return weighted, permuted


_CONFIDENCE_ELEMENTS = 1 << 22  # draws x items x samples counted at once by the plug-ins


def _in_groups(fn, draws_DxN, group: int, b: int, outputs: int):
    """`fn(draws [G, N]) -> outputs x [G, B]` over groups of `group` draws (the last group padded
    with copies of the first draw, then dropped): outputs x [D, B]."""
    d = draws_DxN.shape[0]
    if d == 0:
        return (jnp.zeros((0, b), jnp.float32),) * outputs
    if d <= group:
        return fn(draws_DxN)
    count = -(-d // group)
    padded = jnp.concatenate([draws_DxN, jnp.broadcast_to(draws_DxN[:1], (count * group - d, draws_DxN.shape[1]))])
    out = jax.lax.map(fn, padded.reshape(count, group, -1))
    return tuple(o.reshape(count * group, b)[:d] for o in out)


class PlugIn:
    """What the plug-in estimators (`Binning`, `AdaptiveBinning`, `Exact`) share beyond their
    ids (`ids(acts, exact)`) and alphabet (`cells(num_units)`): their confidence and their
    convergence subsets counted as weights on one ranking of the ids (`plugin_counts`)."""

    bias_correction: str

    def layer_confidence(self, acts_BxNxD, labels, num_classes: int, exact: bool, resamples_RxN, permutations_PxN):
        b, n, d = acts_BxNxD.shape
        ids, bad = self.ids(acts_BxNxD, exact)
        weighted, permuted = plugin_counts(ids, bad, labels, num_classes, self.bias_correction, self.cells(d))
        group = max(1, _CONFIDENCE_ELEMENTS // (b * n))  # draws counted at once (their [draws, B, N] temporaries)
        multiplicities = lambda index: jax.vmap(lambda i: jnp.bincount(i, length=n))(index)  # noqa: E731
        boot_xt, boot_ty = _in_groups(lambda index: weighted(multiplicities(index)), resamples_RxN, group, b, 2)
        (null_ty,) = _in_groups(lambda p: (permuted(p),), permutations_PxN, group, b, 1)
        return boot_xt, boot_ty, null_ty

    def layer_subsets(self, acts_BxNxD, labels, num_classes: int, exact: bool, order_N, sizes):
        _, n, d = acts_BxNxD.shape
        ids, bad = self.ids(acts_BxNxD, exact)
        weighted, _ = plugin_counts(ids, bad, labels, num_classes, self.bias_correction, self.cells(d))
        masks = jnp.stack([jnp.zeros(n, jnp.float64).at[order_N[:size]].set(1.0) for size in sizes])
        return weighted(masks)
