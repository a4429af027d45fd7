"""The owner's view: takings and receipts for a Nairobi day."""
