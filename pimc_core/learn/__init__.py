"""Learning: pixel sampling, pretraining, fine-tuning, forecasting, input selection."""
