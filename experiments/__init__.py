"""The experiment mains: `python -m experiments.<main>` in the repository; installed by
`pip install .` as `ib_jax.experiments` with the console scripts `ib-jax-tishby`, `ib-jax-mnist`,
`ib-jax-memorization` and `ib-jax-compare`. The mains import each other relatively, so the one
folder serves both names."""
