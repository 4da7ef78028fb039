"""The information plane on Shwartz-Ziv & Tishby's 12-bit task (embedded: fully offline).

Default preset `reimplemented`: 12-10-7-5-4-3-2 tanh, SGD lr 0.01 momentum 0.9, full batch,
10,000 epochs, information every 100 epochs on the train (3,277) and test (819) splits of a
seeded shuffle, bin size 0.07. 21 s on a 2-core CPU on a first run, 12-14 s once JAX's compilation
cache holds its programs:

  python -m experiments.tishby --output_dir runs/tishby

Expect train accuracy near 1.0 and test near 0.95 at the end; I(X;T) of the first layer near
11.7 bits on the train split throughout; I(T;Y) of every layer rising to ~1 bit (fitting),
then the middle layers moving left (compression).

`--preset idnns`: IDNNs' settings (Adam 4e-4, batch 512, 8,000 epochs, 400 log-spaced points,
i.e. IDNNs' 274 distinct epochs, plus 0; truncated-normal init; 29 equal bins on
[-1, 1], which are IDNNs' 30 edges), trained on 80 percent and measured on all 4,096 patterns ("all").
Flags given explicitly override the preset.
"""

from absl import flags

from . import common
from . import flags as flag_table

PRESETS = flag_table.PRESETS
_FLAGS = flag_table.define("tishby")
flags.adopt_module_key_flags(flag_table)


def main(argv):
    if len(argv) > 1:
        common.fail(f"error: unexpected arguments {argv[1:]}", 2)
    vals = flag_table.values("tishby", _FLAGS)
    common.init_distributed(vals)
    try:
        config = flag_table.config(
            "tishby", vals, _FLAGS["bin_size"].present, dataset="tishby", evaluate_on_all=vals["preset"] == "idnns"
        )
    except common.errors.ConfigError as e:
        common.fail(f"error: {e}", 2)
    common.run_experiment(config, f"12-bit task ({vals['preset']})", vals, "tishby")


def cli():
    """The console script `ib-jax-tishby` (pip install .): the same main as `python -m experiments.tishby`."""
    common.start(main, __doc__)


if __name__ == "__main__":
    cli()
