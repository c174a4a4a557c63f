"""An SDS with three simulated hosts of different ATLs: migrate an enclave
A -> B -> C, see a migration to a low-ATL host refused, print the ledger.

    pip install ./rewire-py && python examples/python/fleet.py
"""

import os
import sys
import tempfile

import librewire as rewire
from librewire.sim import Fleet, FleetTransport


def main() -> int:
    with tempfile.TemporaryDirectory() as d:
        key = rewire.SigningKey.generate()
        ledger = rewire.Ledger(os.path.join(d, "ledger.sqlite"), key)
        fleet = Fleet(sds_public_key=key.public_key)
        names = {}
        for name, atl in (("A", 3), ("B", 4), ("C", 3), ("L", 1)):
            host = fleet.add_host()
            ledger.pin_device(host)  # simulated devices have no manufacturer: the operator pins them
            ledger.endorse_host(fleet.certificate(host), atl=atl, name=name)
            names[host] = name
            print(f"host {name}: ATL {atl}, id {host.hex()[:16]}…")
        by_name = {v: k for k, v in names.items()}

        code = b"\x7fELF payments enclave" + bytes(4096)
        eid = os.urandom(16)
        policy = ledger.register_enclave(eid, rewire.sha256(code), min_atl=3, host=by_name["A"], name="payments")
        fleet.deploy(eid, code, by_name["A"], state=b"balance=100", sealed=b"api-token", policy=policy)
        print("enclave payments deployed on A (policy: min ATL 3)\n")

        def progress(e):
            print(f"    {names[e[0]]}: {e[3]}")

        orch = rewire.Orchestrator(ledger, FleetTransport(fleet, on_event=progress))
        for target in ("B", "C"):
            print(f"migrate payments -> {target}")
            out = orch.migrate(eid, by_name[target])
            print(f"  => {out.state}: payments at {names[out.location]}, epoch {out.epoch}\n")

        print("migrate payments -> L (ATL 1)")
        try:
            orch.migrate(eid, by_name["L"])
            print("  => unexpectedly allowed")
            return 1
        except rewire.AuthorisationError as err:
            print(f"  => refused: {err} [{err.name}]; payments still at C\n")

        assert fleet.running_copies(eid) == [by_name["C"]]
        print("ledger:")
        for row in ledger.enclaves():
            print(f"  enclave {row['name']}: at {names[bytes(row['location'])]}, epoch {row['epoch']}")
        for m in ledger.migrations():
            print(f"  migration {bytes(m['request_id']).hex()[:12]}…: "
                  f"{names[bytes(m['source'])]} -> {names[bytes(m['target'])]}: {m['state']}")
        for p in ledger.proofs():
            # The host a proof moved the ledger to (RELEASE is signed by the
            # source and names the target; ACTIVE is signed by the target).
            print(f"  proof {p['kind']:9} -> ledger: at {names[bytes(p['host'])]}, epoch {p['epoch']}, "
                  f"{len(p['message'])} B signed")
        ledger.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
