"""Figures: index curves and recurrence plots of a pixel."""
