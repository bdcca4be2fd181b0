"""What a benchmark reports."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class BenchResult:
    name: str
    figure: float
    unit: str
    ceiling: float
    details: dict[str, object] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.figure / self.ceiling if self.ceiling else 0.0

    def line(self) -> str:
        return (
            f"{self.name}: {self.figure:,.0f} {self.unit}, ceiling {self.ceiling:,.0f}, "
            f"ratio {self.ratio:.2f}"
        )
