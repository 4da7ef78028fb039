"""Rows sharded over several (forced host) devices and processes equal one device."""

import os
import subprocess
import sys
import tempfile

import chex
from absl.testing import absltest

from ib_jax import results
from tests import testing
from tests.rows_test import _KEYS, _config, _run, assert_runs_close


class MultiDeviceTest(chex.TestCase):
    def test_sharded_over_four_devices_equals_one_device(self):
        single_device = _run(_config(seed=3, num_seeds=6))
        env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu"}
        cases = ((6, 0, tempfile.mkdtemp()), (3, 1, tempfile.mkdtemp()))  # 6 seeds padded to 8; 3 padded to 4
        proc = subprocess.run(  # both runs in one process with four devices
            [sys.executable, "-c", _MULTI_DEVICE, *(str(v) for case in cases for v in case)],
            cwd=testing.REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
        for seeds, _, out in cases:
            sharded = results.load_results(out)
            config = results.load_config(out)
            self.assertEqual(config["execution"]["padded_seeds"], 8 if seeds == 6 else 4)
            self.assertIn("x4", config["versions"]["device"])
            assert_runs_close(self, sharded, {k: v[:seeds] for k, v in single_device.items() if k in _KEYS})


class MultiProcessTest(chex.TestCase):
    def test_two_processes_on_localhost_equal_one_process(self):
        """jax.distributed over two CPU processes (2 forced devices each), CPU collectives."""
        import socket  # pylint: disable=g-import-not-at-top

        with socket.socket() as s:
            s.bind(("localhost", 0))
            port = s.getsockname()[1]
        args = [
            "-m",
            "experiments.tishby",
            "--epochs",
            "20",
            "--mi_every",
            "10",
            "--hidden",
            "6,4",
            "--num_seeds",
            "4",
            "--test_fraction",
            "0.5",
            "--plot=false",
        ]
        env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
        tmp = tempfile.mkdtemp()
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    *args,
                    "--output_dir",
                    f"{tmp}/multi",
                    "--coordinator_address",
                    f"localhost:{port}",
                    "--num_processes",
                    "2",
                    "--process_id",
                    str(i),
                ],
                cwd=testing.REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for i in range(2)
        ]
        logs = [p.communicate(timeout=300)[0] for p in procs]
        for p, log in zip(procs, logs):
            self.assertEqual(p.returncode, 0, log[-3000:])
        single = subprocess.run(
            [sys.executable, *args, "--output_dir", f"{tmp}/single"],
            cwd=testing.REPO,
            env={**env, "XLA_FLAGS": ""},
            capture_output=True,
            text=True,
            timeout=300,
        )
        self.assertEqual(single.returncode, 0, single.stderr[-3000:])
        multi = results.load_results(f"{tmp}/multi")
        self.assertEqual(results.load_config(f"{tmp}/multi")["execution"]["processes"], 2)
        assert_runs_close(self, multi, {k: v for k, v in results.load_results(f"{tmp}/single").items()})


_MULTI_DEVICE = """
import sys
import jax
from ib_jax import experiment
from tests import rows_test
assert jax.device_count() == 4, jax.devices()
for i in range(1, len(sys.argv), 3):  # (seeds, seeds_per_device, output folder) per run
    config = rows_test._config(seed=3, num_seeds=int(sys.argv[i]))
    out = experiment.prepare_output_dir(sys.argv[i + 2], False)
    experiment.run(config, experiment.load_dataset(config), out, seeds_per_device=int(sys.argv[i + 1]))
"""


if __name__ == "__main__":
    absltest.main()
