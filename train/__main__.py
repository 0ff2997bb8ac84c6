"""``python -m train ...`` is ``exportkit train ...``; it is the module torchrun starts for data-parallel training:
``torchrun --nproc-per-node 2 -m train --epochs 10``."""

import sys

from export_kit.cli.app import app

app(["train", *sys.argv[1:]], prog_name="python -m train")
