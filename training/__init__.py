"""Weakly supervised training of the vRGV model (needs the ``train`` extra: torch)."""
