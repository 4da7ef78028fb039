"""Rows on devices: a 1-D mesh over the row axis, rows run in groups one after another on each
device, the row count padded to fill every group, and host <-> device transfers that also work
across processes."""

import dataclasses

import jax
import numpy as np

from ib_jax import errors

AXIS = "seeds"


@dataclasses.dataclass(frozen=True)
class Layout:
    """How `num_rows` rows lie on `mesh`: each device runs its block of rows in groups of
    `group`, one group after another, so memory holds one group's activations. The row count
    is padded up to `padded` (a multiple of devices x group) by repeating rows from the start,
    which are run and dropped."""

    mesh: jax.sharding.Mesh
    num_rows: int
    group: int
    padded: int

    @property
    def sharding(self) -> jax.sharding.NamedSharding:
        return jax.sharding.NamedSharding(self.mesh, jax.sharding.PartitionSpec(AXIS))

    @property
    def order(self) -> np.ndarray:
        """[padded] the row each padded slot runs (padding repeats rows from the start)."""
        return np.arange(self.padded) % self.num_rows


def layout(num_rows: int, seeds_per_device: int = 0, devices=None) -> Layout:
    """The layout of `num_rows` rows on `devices` (default: all), at most `seeds_per_device`
    at once per device (0 = the whole block)."""
    devices = list(devices if devices is not None else jax.devices())
    if seeds_per_device < 0:
        raise errors.ConfigError(f"seeds_per_device must be >= 0, got {seeds_per_device}")
    per_device = -(-num_rows // len(devices))
    group = min(seeds_per_device, per_device) if seeds_per_device else per_device
    block = len(devices) * group
    padded = -(-num_rows // block) * block
    return Layout(jax.sharding.Mesh(np.asarray(devices), (AXIS,)), num_rows, group, padded)


def sharded(lay: Layout, group_fn, num_seeded: int, num_static: int):
    """Wraps `group_fn(*seeded, *static)` (`num_seeded` arguments with a leading [group] row
    axis, then `num_static` shared ones) to run on [padded, ...] inputs: groups one after
    another on each device (`lax.map`), devices in parallel (`shard_map`)."""

    def local(*args):
        seeded, static = args[:num_seeded], args[num_seeded:]
        n = jax.tree.leaves(seeded)[0].shape[0]
        if n == lay.group:
            return group_fn(*seeded, *static)
        split = jax.tree.map(lambda a: a.reshape(n // lay.group, lay.group, *a.shape[1:]), seeded)
        out = jax.lax.map(lambda xs: group_fn(*xs, *static), split)
        return jax.tree.map(lambda a: a.reshape(n, *a.shape[2:]), out)

    if lay.mesh.size == 1:
        return local
    spec, replicated = jax.sharding.PartitionSpec(AXIS), jax.sharding.PartitionSpec()
    # Every value is per row (nothing is reduced across devices), so the varying-axis type
    # check, which trips on loop buffers created inside, is not needed.
    in_specs = (spec,) * num_seeded + (replicated,) * num_static
    return jax.shard_map(local, mesh=lay.mesh, in_specs=in_specs, out_specs=spec, check_vma=False)


def put(tree, sharding):
    """Host arrays -> global arrays laid out by `sharding` (works across processes: each
    process supplies the shards of its own devices from its identical host copy)."""

    def one(a):
        a = np.asarray(a)
        return jax.make_array_from_callback(a.shape, sharding, lambda index: a[index])

    return jax.tree.map(one, tree)


def host(x) -> np.ndarray:
    """A (possibly multi-process) array as a full host numpy array."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top

        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)
