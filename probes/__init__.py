"""Probe families that estimate the predictive V-information of frozen representations."""
