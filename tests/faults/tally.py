"""What the fault suite published, saw applied, parked and replayed; printed as one line at the end."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Tally:
    published: int = 0
    applied: int = 0
    parked: int = 0
    replayed: int = 0
    lost: int = 0
    duplicated: int = 0
    scenarios: list[str] = field(default_factory=list)

    def add(self, scenario: str, published: int, applied_ids: list[str], expected: set[str],
            parked: int = 0, replayed: int = 0) -> None:
        """``applied_ids``: the event ids the CRM's ledger holds, once per entry; ``expected``:
        the ids that must be there (every valid event published)."""
        counts = Counter(applied_ids)
        self.scenarios.append(scenario)
        self.published += published
        self.applied += len(counts)
        self.parked += parked
        self.replayed += replayed
        self.lost += len(expected - counts.keys())
        self.duplicated += sum(n - 1 for n in counts.values() if n > 1)

    def line(self) -> str:
        return (f"fault suite: {len(self.scenarios)} scenarios, published={self.published} "
                f"applied={self.applied} parked={self.parked} (only the poison) "
                f"replayed={self.replayed} lost={self.lost} duplicated={self.duplicated}")


TALLY = Tally()
