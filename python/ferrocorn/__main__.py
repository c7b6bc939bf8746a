"""Console entry point: hands argv to the Rust core, which owns the whole command line."""

import sys


def main() -> None:
    from ferrocorn._core import run

    sys.exit(run(sys.argv))


if __name__ == "__main__":
    main()
