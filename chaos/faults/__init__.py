"""Faults with guaranteed revert. See base.py for the model (declaration -> actions)."""

from .base import Action, FaultSpec, Param, Selector, kinds, plan, register
from .engine import Engine, FaultError, RevertReport
from .ledger import Ledger

__all__ = ["Action", "Engine", "FaultError", "FaultSpec", "Ledger", "Param", "RevertReport",
           "Selector", "kinds", "plan", "register"]
