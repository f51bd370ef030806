"""Typed views of a portal, read in few calls."""
