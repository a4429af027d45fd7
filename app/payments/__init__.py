"""The payment engine: input rules, the status table, and the one service that changes payments."""
