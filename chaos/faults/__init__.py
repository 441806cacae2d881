"""Faults with guaranteed revert. See base.py for the model (declaration -> actions)."""

from chaos.faults.base import Action, FaultSpec, Param, Selector, catalogue, plan, register
from chaos.faults.engine import Engine, FaultError, RevertReport
from chaos.faults.ledger import Ledger

__all__ = ["Action", "Engine", "FaultError", "FaultSpec", "Ledger", "Param", "RevertReport",
           "Selector", "catalogue", "plan", "register"]
