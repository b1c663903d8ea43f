"""The Textual app: renders what the core computes, never computes verdicts or decodes itself."""
