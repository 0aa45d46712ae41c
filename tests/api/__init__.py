"""Tests of the events API (aibrain.api)."""
