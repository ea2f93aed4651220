"""Containers (a Graph) for the reference modules."""
