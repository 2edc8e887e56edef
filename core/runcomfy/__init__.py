"""RunComfy: dedicated machines (launch, watch, stop, ledger) and Serverless deployments."""
