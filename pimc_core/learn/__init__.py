"""Learning: pixel sampling (sampling), the one optimisation loop (loop) with its augmentations
(augment), processes (ddp) and checkpoints (checkpoints); self-supervised pretraining (pretrain),
classifier fine-tuning (finetune), forecasting (forecast) and input selection (input_selection)."""
