"""Test order: the longest test classes (compilation of whole runs, the mains in subprocesses)
are collected first, so that pytest-xdist (`--dist loadscope`, one class at a time to a free
worker) hands them out at the start and the two workers finish together, instead of one of
them starting a long class when the other is nearly done."""

# Longest first, from `pytest --durations` on a 2-core CPU (from 230 s down to about 10 s).
_LONGEST = (
    "RunTest",
    "MainsTest",
    "OneLineErrorsTest",
    "SeedsTest",
    "SnippetsTest",
    "InstallTest",
    "ExamplesTest",
    "SlowCompilingEstimatorsRunTest",
    "DecodableRunTest",
    "NoisyRunTest",
    "AccuracySmokeTest",
    "FiniteAccuracySmokeTest",
    "MultiDeviceTest",
    "MultiProcessTest",
    "BuildResultsTest",
    "TrainStepTest",
    "MnistFitTest",
    "RunFiguresTest",
    "FigureContentTest",
    "RecorderTest",
    "ReferenceTest",
    "ProgramTest",
    "QuantizedMLPTest",
    "MLPTest",
)


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(_LONGEST)}
    items.sort(
        key=lambda item: rank.get(getattr(item.cls, "__name__", ""), len(rank))
    )  # stable: the rest keep their order
