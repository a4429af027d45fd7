"""Safaricom's STK callbacks: the endpoint, and the inbox that stores then applies them."""
