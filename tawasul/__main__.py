"""`python -m tawasul` is the `tawasul` command."""

from __future__ import annotations

from tawasul.app.cli import main

if __name__ == "__main__":
    main()
