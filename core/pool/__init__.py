"""A pool of workers: one job list spread over several back ends of any kind, with the cost
known before the run."""
