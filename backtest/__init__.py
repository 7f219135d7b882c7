"""Offline replay, synthetic data and evaluation of the online models."""
