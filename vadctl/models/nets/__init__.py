"""Network definitions for the neural models (torch modules only: no data, no training loops)."""
