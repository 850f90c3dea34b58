"""The `protocol` job type: a study protocol's PDF is read (`extract`), its terms matched against a
vocabulary (`ground`), and a person approves or rejects the result (`review`)."""
