"""Figures: index curves and recurrence plots of a pixel; the error matrix of an accuracy assessment."""
