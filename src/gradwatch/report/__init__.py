"""Presentation: terminal tables (rich) and plots (matplotlib). Reads results, never live tensors."""
