#!/usr/bin/env python3
"""Plain AGI entry: one call of the hotline over stdin/stdout, the menu as the first argument (else
``HOTLINE_MENU``). Asterisk runs it through the launcher ``hotline agi-script install`` writes
(``AGI(hotline-agi[,<menu>])``, see agi_scripts/launcher.py), which supplies the hotline's Python and
settings. FastAGI (``hotline agi``) is the better choice for load: this starts Python once per call.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout too
    from hotline.agi_app import run_plain_agi

    run_plain_agi(sys.argv[1] if len(sys.argv) > 1 else None)
