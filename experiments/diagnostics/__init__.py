"""One-off measurements behind results/ files, each with a smoke test."""
