"""Kubaty et al.'s analyses of multi-exit training (placeholder)."""
