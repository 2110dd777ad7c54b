"""Power-cut soak: SIGKILL the station 500+ times in payment journeys; prints kills, journeys, restarts, violations."""
from __future__ import annotations

import argparse
import logging
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from powercut import SETUPS, Tally, run_matrix


def main() -> int:
    """Run the matrix; exit 1 if any invariant was broken."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kills", type=int, default=500, help="SIGKILLs in all, shared by the set-ups (default 500)")
    parser.add_argument("--seed", type=int, help="random seed (default: a new one, printed)")
    parser.add_argument("--setup", choices=(*SETUPS, "both"), default="both",
                        help="A: the terminal in its own process survives; B: the whole cabinet loses power")
    parser.add_argument("--pairing", choices=("loose", "strict"), default="loose", help="set-up A's terminal")
    parser.add_argument("--folder", type=Path, help="for databases, journals and logs (default: a new temporary one)")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    folder = args.folder or Path(tempfile.mkdtemp(prefix="kiosk-powercut-"))
    setups = SETUPS if args.setup == "both" else (args.setup,)
    plan = [(setup, args.pairing if setup == "A" else "loose", -(-args.kills // len(setups))) for setup in setups]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    command = f"bench/powercut_soak.py --kills {args.kills} --seed {seed} --setup {args.setup} --pairing {args.pairing}"
    print(f"{command}: files in {folder}", flush=True)
    tallies = run_matrix(folder, seed, plan)
    for name, tally in tallies.items():
        print(f"set-up {name}: {tally.summary()}")
    total = Tally.total(list(tallies.values()))
    print(f"total: {total.summary()}")
    for violation in total.violations:
        print(violation)
    return 1 if total.violations else 0


if __name__ == "__main__":
    sys.exit(main())
