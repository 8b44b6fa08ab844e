"""The AWS side of snapcdc emulated in process: moto plus the bridges moto lacks.

Entry point: :class:`Emulator` (see :mod:`snapcdc.local.emulator.emulated_aws`).
"""

from snapcdc.local.emulator.emulated_aws import Emulator

__all__ = ["Emulator"]
