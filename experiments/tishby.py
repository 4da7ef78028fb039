"""The information plane on Shwartz-Ziv & Tishby's 12-bit task (embedded: fully offline).

Default preset `reimplemented`: 12-10-7-5-4-3-2 tanh, SGD lr 0.01 momentum 0.9, full batch,
10,000 epochs, information every 100 epochs on the train (3,277) and test (819) splits of a
seeded shuffle, bin size 0.07. About a minute on a 2-core CPU:

  python -m experiments.tishby --output_dir runs/tishby

Expect train accuracy near 1.0 and test near 0.96 at the end; I(X;T) of the first layer near
11.7 bits on the train split throughout; I(T;Y) of every layer rising to ~1 bit (fitting),
then the middle layers moving left (compression).

`--preset idnns`: IDNNs' settings (Adam 4e-4, batch 512, 8,000 epochs, 400 log-spaced points,
i.e. IDNNs' 274 distinct epochs, plus 0; truncated-normal init; 29 equal bins on
[-1, 1], which are IDNNs' 30 edges), trained on 80% and measured on all 4,096 patterns ("all").
Flags given explicitly override the preset.
"""

from absl import app, flags

from experiments import common

PRESETS = {
    "reimplemented": {
        "epochs": 10000, "optimizer": "sgd", "learning_rate": 0.01, "momentum": 0.9, "batch_size": 0,
        "loss_reduction": "mean", "mi_every": 100, "mi_log_points": 0, "bin_size": 0.07, "num_bins": 0,
        "init": "default",
    },
    "idnns": {
        "epochs": 8000, "optimizer": "adam", "learning_rate": 4e-4, "momentum": 0.0, "batch_size": 512,
        "loss_reduction": "mean", "mi_every": 100, "mi_log_points": 400, "bin_size": None, "num_bins": 29,
        "bin_range": "-1,1", "init": "truncated_normal",
    },
}  # fmt: skip

common.define_flags(
    {"output_dir": "runs/tishby", "hidden": "10,7,5,4,3", "kde_noise_variance": 1e-3, **PRESETS["reimplemented"]}
)
_PRESET = flags.DEFINE_enum("preset", "reimplemented", list(PRESETS), "Settings to start from.")
_TEST_FRACTION = flags.DEFINE_float("test_fraction", 0.2, "Share of the 4,096 patterns held out.")


def main(argv):
    if len(argv) > 1:
        common.fail(f"error: unexpected arguments {argv[1:]}", 2)
    common.init_distributed()
    for name, value in PRESETS[_PRESET.value].items():
        if not common.FLAGS[name].present:
            common.FLAGS[name].value = value
    try:
        config = common.config_from_flags(
            "tishby", test_fraction=_TEST_FRACTION.value, evaluate_on_all=_PRESET.value == "idnns"
        )
    except common.errors.ConfigError as e:
        common.fail(f"error: {e}", 2)
    common.run_experiment(config, f"12-bit task ({_PRESET.value})")


if __name__ == "__main__":
    app.run(main, flags_parser=common.parse_flags)
