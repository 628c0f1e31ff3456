"""Reusable Keras 3 layers for recurrent attentive text-image fusion."""
