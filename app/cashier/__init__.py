"""The cashier's counter: send an STK push and watch its row until it is settled."""
