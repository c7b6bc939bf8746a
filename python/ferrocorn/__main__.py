"""Console entry point: hands argv to the Rust core, which owns the whole command line."""

import sys


def main() -> None:
    # `ferrocorn ctl ...` is the control-socket client, a plain Python program.
    if len(sys.argv) > 1 and sys.argv[1] == "ctl":
        from ferrocorn.ctl import main as ctl_main

        sys.exit(ctl_main(sys.argv[2:]))
    from ferrocorn._core import run

    sys.exit(run(sys.argv))


if __name__ == "__main__":
    main()
