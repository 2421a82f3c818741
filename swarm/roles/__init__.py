"""Roles shipped with aar, one module each; each is registered in pyproject's ``aar.roles``."""
