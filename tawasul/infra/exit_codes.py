"""Exit statuses shared by every command (the stages' commands and the `tawasul` group)."""

from __future__ import annotations

from typing import Final

EXIT_USAGE: Final = 2
"""Exit status of a setting that cannot be used (as click's usage errors)."""

EXIT_KAFKA: Final = 3
"""Exit status of a command that could not use Kafka."""
