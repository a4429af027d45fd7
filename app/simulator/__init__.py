"""Built-in Daraja (M-Pesa STK Push) simulator, mounted at /simulator in demo mode."""

from app.simulator.views import bp

__all__ = ["bp"]
