"""The b24kit command line: a thin layer over the library."""
