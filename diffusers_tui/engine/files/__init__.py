"""Files: the recipe a PNG carries, saving outputs, reading recipes and history back, comparisons, export."""
