"""ComfyICU: runs of a saved workflow, with input files by URL."""
