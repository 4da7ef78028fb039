"""Prints the flags a main really defines (its own and the flag table's), one per line:

python -m tests.defined_flags MAIN    # MAIN: tishby, mnist, ...
"""

import importlib
import sys

from absl import flags

if __name__ == "__main__":
    main = sys.argv[1]
    importlib.import_module("experiments." + main)
    for module, defined in flags.FLAGS.flags_by_module_dict().items():
        if module.startswith("experiments") or module.endswith(main + ".py"):
            print("\n".join(f.name for f in defined))
