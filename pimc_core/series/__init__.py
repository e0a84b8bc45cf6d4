"""Per-pixel series: vegetation indices, gap filling, recurrence plots."""
