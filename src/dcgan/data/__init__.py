"""Data sets: sources, downloads, readers (IDX, image folders) and preprocessing."""
