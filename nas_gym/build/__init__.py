"""The benchmarks' builders: tables, trained samples, the surrogate's fit. No env imports them."""
