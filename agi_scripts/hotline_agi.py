#!/usr/bin/env python3
"""Plain AGI entry: ``exten => 95555,n,AGI(hotline_agi.py[,<menu>])`` runs one call of the hotline.

Settings come from the environment or a ``.env`` beside where Asterisk starts the script; the menu
is the first argument, else ``HOTLINE_MENU``. FastAGI (``hotline agi``) is the better choice for
load: this starts Python once per call.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout too
    from hotline.agi_app import run_plain_agi

    run_plain_agi(sys.argv[1] if len(sys.argv) > 1 else None)
