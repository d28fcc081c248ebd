"""What the suite does with the variants: measure their cost (and, in later parts, train and report them)."""
