"""HTTP and files: sessions with timeouts, rate limits, downloads and safe output names."""
