"""The `extraction` job type: one stage that extracts a document's text, classified as a document
pipeline classifies its failures."""
