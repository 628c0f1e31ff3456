"""LBIE models, losses, metrics, input pipelines, training, export, editing."""
