"""The model as exportkit sees it: its inputs and outputs, where it comes from, and how images become its input."""
