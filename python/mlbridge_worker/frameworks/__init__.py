"""Bridges for real ML frameworks. Each module imports its framework at import time, so a
zygote (PoolConfig.Preload) pays the import once for all workers."""
