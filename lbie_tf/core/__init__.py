"""The task-agnostic core: training, evaluation, export and serving plumbing."""
