"""Plain-PyTorch reference of Step-Audio 2 mini, written from docs/model.md.

Module names and state-dict keys are identical to the official model, so dumps made here look exactly like dumps made
from the official model with forward hooks. Runs with Debian 12's python3-torch 1.13 (CPU).
"""
