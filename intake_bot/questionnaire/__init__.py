"""The questionnaire: its model, the YAML loader with validation, and the pure flow engine."""
