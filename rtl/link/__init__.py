"""The host's side of the chip: the register bank and the UART host link a board carries."""
