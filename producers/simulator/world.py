"""Run context: calendars, calibrated streams, the mosque registry and seeded randomness."""

from __future__ import annotations

import hashlib
import random
from datetime import date

from .arrivals import Stream, reference_weight
from .business import BusinessCalendar
from .catalog import CENTRES, Mosque, mosque_registry
from .days import Almanac, DayInfo
from .params import Params
from .profiles import PROFILE_BY_CHANNEL
from .ticket_classes import TICKET_CLASSES

PEOPLE = 40_000
"""Size of the simulated customer population (repeat contacts share a reference)."""


def build_streams(params: Params) -> tuple[Stream, ...]:
    """All arrival streams: calls, tickets per kind and channel, visits per centre."""
    calibration = params.calibration
    streams = [Stream("calls", "contact_centre", calibration.calls_offered)]
    for cls in TICKET_CLASSES:
        target = calibration.ticket_target(cls.kind)
        for channel, share in cls.channels:
            streams.append(
                Stream(
                    f"ticket.{cls.kind}.{channel}",
                    PROFILE_BY_CHANNEL[channel],
                    target.count * share,
                    cls.month_factors,
                    cls.ramadan_factor,
                )
            )
    for centre in CENTRES:
        streams.append(Stream(f"visit.{centre.centre_id}", "office", calibration.walk_in_visits * centre.share))
    return tuple(streams)


class World:
    """Everything a day's generation needs; built once per run."""

    def __init__(self, params: Params) -> None:
        self.params = params
        self.almanac = Almanac()
        self.calendars = {name: BusinessCalendar(name, self.almanac) for name in ("gov", "always")}
        self.mosques: tuple[Mosque, ...] = mosque_registry()
        calibration = params.calibration
        self.streams = {stream.name: stream for stream in build_streams(params)}
        self.per_level_minute: dict[str, float] = {}
        for stream in self.streams.values():
            weight = reference_weight(stream, self.almanac, calibration.reference_start, calibration.reference_end)
            self.per_level_minute[stream.name] = stream.count / weight * params.scale if weight > 0 else 0.0

    def info(self, day: date) -> DayInfo:
        return self.almanac.info(day)

    def rng(self, day: date, name: str) -> random.Random:
        """A generator seeded by (seed, day, name): a day's content ignores the run's range."""
        return random.Random(f"{self.params.seed}|{day.isoformat()}|{name}")

    def person_ref(self, rng: random.Random) -> str:
        """An opaque pseudonymous customer reference; frequent contacts recur."""
        person = int(PEOPLE * rng.random() ** 1.6)
        ref = hashlib.blake2b(f"{self.params.seed}:{person}".encode(), digest_size=8).hexdigest()
        # about 1 in 1,800 digests has digits only, which can read as a phone number ("00..."),
        # and the intake rightly refuses those: keep such a reference unmistakably opaque
        return "c" + ref[1:] if ref.isdigit() else ref

    def mosque(self, rng: random.Random) -> Mosque:
        """A mosque; some mosques report problems more often than others."""
        return self.mosques[int(len(self.mosques) * rng.random() ** 1.3)]
