"""One folder per step pipeline; ``train`` composes them, ``predict`` serves a package."""
