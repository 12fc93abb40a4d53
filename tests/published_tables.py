"""The published COIN-M bracket tables
(docs/behaviour.md#brackets), copied verbatim, for the tests that check the shipped data."""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

# docs/behaviour.md#brackets, copied verbatim, each cell
# `initialLeverage: qtyFloor-qtyCap: maintMarginRatio: cum`.
PUBLISHED_TABLES = {
    "BTCUSD_PERP": "125:0-5:0.004:0 | 100:5-10:0.005:0.005 | 50:10-25:0.01:0.055 | "
    "20:25-150:0.025:0.43 | 10:150-400:0.05:4.18 | 5:400-950:0.1:24.18 | "
    "4:950-1200:0.125:47.93 | 3:1200-1600:0.15:77.93 | 2:1600-2400:0.25:237.93 | "
    "1:2400-3500:0.5:837.93",
    "ETHUSD_PERP": "100:0-15:0.005:0 | 75:15-100:0.0065:0.0225 | 50:100-400:0.01:0.3725 | "
    "20:400-1500:0.025:6.3725 | 10:1500-5000:0.05:43.8725 | 5:5000-14000:0.1:293.8725 | "
    "4:14000-18000:0.125:643.8725 | 3:18000-24000:0.15:1093.8725 | "
    "2:24000-36000:0.25:3493.8725 | 1:36000-55000:0.5:12493.8725",
    "BTCUSD quarterly": "50:0-10:0.01:0 | 20:10-50:0.025:0.15 | 10:50-100:0.05:1.4 | "
    "5:100-200:0.1:6.4 | 4:200-400:0.125:11.4 | 3:400-800:0.15:21.4 | "
    "2:800-1500:0.25:101.4 | 1:1500-5000:0.5:476.4",
    "ETHUSD quarterly": "50:0-100:0.01:0 | 20:100-500:0.025:1.5 | 10:500-1000:0.05:14 | "
    "5:1000-2000:0.1:64 | 4:2000-3000:0.125:114 | 3:3000-5000:0.15:189 | "
    "2:5000-10000:0.25:689 | 1:10000-50000:0.5:3189",
}


class Cell(NamedTuple):
    initial_leverage: int
    qty_floor: Decimal
    qty_cap: Decimal
    maint_margin_ratio: Decimal
    cum: Decimal


def published_table(text: str) -> tuple[Cell, ...]:
    """One PUBLISHED_TABLES value as cells, in bracket order."""
    cells = []
    for cell in text.split(" | "):
        leverage, quantities, mmr, cum = cell.split(":")
        floor, cap = quantities.split("-")
        cells.append(Cell(int(leverage), Decimal(floor), Decimal(cap), Decimal(mmr), Decimal(cum)))
    return tuple(cells)
