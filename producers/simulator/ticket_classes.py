"""Assumed structure of each ticket kind: channels, categories, priorities and handling times."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

_HOUR = 3600.0
SLIP_SIGMA = 0.5


def _upper_tail(threshold: float, median: float, sigma: float) -> float:
    """P(X > threshold) for a log-normal X with the given median and sigma."""
    z = math.log(threshold / median) / sigma
    return 0.5 * math.erfc(z / math.sqrt(2.0))


@dataclass(frozen=True)
class Delay:
    """A business-time delay: log-normal, with a share of slipped cases (hours).

    `target_hours` is the deadline used to decide whether a customer experienced the
    ticket as late (which lowers their satisfaction); the SLA engine uses its own policies.
    """

    median_hours: float
    sigma: float
    slip_share: float
    slip_median_hours: float
    target_hours: float

    def draw(self, rng: random.Random) -> float:
        """Seconds of business time."""
        if rng.random() < self.slip_share:
            return rng.lognormvariate(math.log(self.slip_median_hours * _HOUR), SLIP_SIGMA)
        return rng.lognormvariate(math.log(self.median_hours * _HOUR), self.sigma)

    def late_share(self) -> float:
        """Expected share of delays over the target."""
        normal = _upper_tail(self.target_hours, self.median_hours, self.sigma)
        slipped = _upper_tail(self.target_hours, self.slip_median_hours, SLIP_SIGMA)
        return (1.0 - self.slip_share) * normal + self.slip_share * slipped


@dataclass(frozen=True)
class Timing:
    """Handling times of a ticket: calendar ("gov" / "always"), first response, resolution."""

    calendar: str
    ack: Delay
    res: Delay


@dataclass(frozen=True)
class Category:
    name: str
    weight: float
    department: str
    urgent_share: float = 0.0
    at_mosque: bool = False
    summer_peak: bool = False


@dataclass(frozen=True)
class TicketClass:
    """Everything the simulator assumes about one ticket kind."""

    kind: str
    channels: tuple[tuple[str, float], ...]
    categories: tuple[Category, ...]
    priorities: tuple[tuple[str, float], ...]
    timing: tuple[tuple[str, Timing], ...]
    assign_share: float
    pause_share: float
    reopen_share: float
    escalate_share: float
    resolutions: tuple[str, ...]
    month_factors: tuple[float, ...] = (1.0,) * 12
    ramadan_factor: float = 1.0

    def timing_for(self, priority: str) -> Timing:
        for name, timing in self.timing:
            if name == priority:
                return timing
        return self.timing[0][1]


def _gov(ack: Delay, res: Delay) -> Timing:
    return Timing("gov", ack, res)


def _always(ack: Delay, res: Delay) -> Timing:
    return Timing("always", ack, res)


SUMMER_FACTORS = (0.4, 0.5, 0.9, 1.3, 1.8, 2.3, 2.5, 2.5, 2.0, 1.3, 0.7, 0.5)
"""Relative weight of air-conditioning faults by month."""

REQUEST = TicketClass(
    kind="request",
    channels=(("crm", 1.0),),
    categories=(
        Category("fatwa.request", 6, "iftaa"),
        Category("charity.donation_permit", 4, "charity"),
        Category("charity.fundraising_campaign", 2, "charity"),
        Category("zakat.calculation", 3, "zakat"),
        Category("quran.enrolment", 4, "quran_centres"),
        Category("quran.certificate", 2, "quran_centres"),
        Category("mosque.construction_permit", 1, "mosque_engineering"),
        Category("mosque.naming", 1, "mosques_affairs"),
        Category("preaching.lecture_request", 2, "preaching"),
        Category("preaching.preacher_permit", 1, "preaching"),
        Category("new_muslims.registration", 2, "new_muslims"),
        Category("general.certificate", 2, "customer_happiness"),
    ),
    priorities=(("normal", 0.85), ("high", 0.08), ("low", 0.07)),
    timing=(
        ("normal", _gov(Delay(0.7, 0.8, 0.04, 6, 4), Delay(6, 0.55, 0.06, 30, 24))),
        ("high", _gov(Delay(0.3, 0.7, 0.03, 5, 4), Delay(4, 0.5, 0.05, 28, 24))),
        ("low", _gov(Delay(1.0, 0.8, 0.04, 6, 4), Delay(8, 0.5, 0.06, 32, 24))),
    ),
    assign_share=0.6,
    pause_share=0.15,
    reopen_share=0.03,
    escalate_share=0.02,
    resolutions=("completed", "completed", "completed", "approved", "rejected", "referred"),
    ramadan_factor=1.0,
)

FACILITY_REPORT = TicketClass(
    kind="facility_report",
    channels=(("complaints_platform", 0.72), ("call", 0.14), ("app", 0.09), ("web", 0.05)),
    categories=(
        Category("mosque.air_conditioning", 22, "mosque_maintenance", 0.08, True, True),
        Category("mosque.cleaning", 20, "mosque_services", 0.01, True),
        Category("mosque.electrical", 12, "mosque_maintenance", 0.12, True),
        Category("mosque.plumbing", 12, "mosque_maintenance", 0.08, True),
        Category("mosque.sound_system", 10, "mosque_maintenance", 0.05, True),
        Category("mosque.carpets", 8, "mosque_services", 0.0, True),
        Category("mosque.lighting", 6, "mosque_maintenance", 0.03, True),
        Category("mosque.ablution_area", 5, "mosque_services", 0.03, True),
        Category("mosque.water_coolers", 3, "mosque_maintenance", 0.02, True),
        Category("mosque.pest_control", 2, "mosque_services", 0.0, True),
    ),
    priorities=(("normal", 0.64), ("high", 0.22), ("low", 0.14)),
    timing=(
        ("urgent", _always(Delay(0.2, 0.6, 0.05, 1.5, 1), Delay(2.0, 0.35, 0.04, 6, 4))),
        ("high", _always(Delay(0.5, 0.7, 0.05, 4, 2), Delay(8, 0.5, 0.07, 36, 24))),
        ("normal", _gov(Delay(1.0, 0.7, 0.05, 8, 4), Delay(10, 0.5, 0.06, 40, 24))),
        ("low", _gov(Delay(2, 0.7, 0.05, 8, 4), Delay(12, 0.5, 0.06, 40, 24))),
    ),
    assign_share=0.9,
    pause_share=0.03,
    reopen_share=0.03,
    escalate_share=0.01,
    resolutions=("fixed", "fixed", "fixed", "cleaned", "replaced", "contractor_scheduled"),
    month_factors=(0.9, 0.9, 1.0, 1.0, 1.05, 1.15, 1.2, 1.2, 1.1, 1.0, 0.95, 0.9),
    ramadan_factor=1.25,
)

COMPLAINT = TicketClass(
    kind="complaint",
    channels=(
        ("complaints_platform", 0.55),
        ("call", 0.15),
        ("email", 0.10),
        ("web", 0.10),
        ("social", 0.05),
        ("walk_in", 0.05),
    ),
    categories=(
        Category("service.delay", 4, "customer_happiness"),
        Category("service.staff_conduct", 2, "customer_happiness"),
        Category("call_centre.experience", 2, "customer_happiness"),
        Category("digital.website", 1, "smart_services"),
        Category("mosque.imam", 2, "mosques_affairs", 0.02, True),
        Category("mosque.noise", 1, "mosques_affairs", 0.0, True),
        Category("mosque.parking", 1, "mosques_affairs", 0.0, True),
    ),
    priorities=(("normal", 0.72), ("high", 0.2), ("low", 0.08)),
    timing=(
        ("normal", _gov(Delay(2, 0.7, 0.06, 10, 8), Delay(14, 0.5, 0.08, 60, 40))),
        ("high", _gov(Delay(1, 0.7, 0.05, 10, 8), Delay(8, 0.5, 0.07, 50, 40))),
        ("urgent", _always(Delay(0.3, 0.6, 0.05, 2, 1), Delay(3, 0.4, 0.06, 8, 4))),
    ),
    assign_share=0.8,
    pause_share=0.12,
    reopen_share=0.05,
    escalate_share=0.03,
    resolutions=("resolved", "resolved", "explained", "action_taken", "not_substantiated"),
)

SUGGESTION = TicketClass(
    kind="suggestion",
    channels=(("complaints_platform", 0.70), ("web", 0.15), ("app", 0.10), ("email", 0.05)),
    categories=(
        Category("suggestion.services", 3, "customer_happiness"),
        Category("suggestion.mosques", 3, "mosques_affairs", 0.0, True),
        Category("suggestion.digital", 2, "smart_services"),
        Category("suggestion.programmes", 1, "preaching"),
    ),
    priorities=(("low", 0.6), ("normal", 0.4)),
    timing=(
        ("low", _gov(Delay(2, 0.7, 0.05, 12, 8), Delay(16, 0.5, 0.06, 60, 40))),
        ("normal", _gov(Delay(1.5, 0.7, 0.05, 10, 8), Delay(12, 0.5, 0.06, 50, 40))),
    ),
    assign_share=0.5,
    pause_share=0.02,
    reopen_share=0.01,
    escalate_share=0.0,
    resolutions=("under_study", "accepted", "declined", "implemented"),
)

INQUIRY = TicketClass(
    kind="inquiry",
    channels=(("call", 0.30), ("web", 0.25), ("email", 0.20), ("social", 0.15), ("app", 0.10)),
    categories=(
        Category("inquiry.services", 4, "customer_happiness"),
        Category("inquiry.fatwa", 3, "iftaa"),
        Category("inquiry.zakat", 2, "zakat"),
        Category("inquiry.quran_courses", 2, "quran_centres"),
        Category("inquiry.mosque_services", 1, "mosques_affairs", 0.0, True),
    ),
    priorities=(("normal", 0.9), ("low", 0.1)),
    timing=(
        ("normal", _gov(Delay(0.4, 0.8, 0.05, 3, 2), Delay(2.5, 0.6, 0.06, 12, 8))),
        ("low", _gov(Delay(0.5, 0.8, 0.05, 3, 2), Delay(3, 0.6, 0.06, 12, 8))),
    ),
    assign_share=0.3,
    pause_share=0.05,
    reopen_share=0.02,
    escalate_share=0.0,
    resolutions=("answered", "answered", "answered", "referred"),
)

COMPLIMENT = TicketClass(
    kind="compliment",
    channels=(("complaints_platform", 0.60), ("social", 0.20), ("email", 0.10), ("web", 0.10)),
    categories=(
        Category("compliment.staff", 3, "customer_happiness"),
        Category("compliment.service", 2, "customer_happiness"),
        Category("compliment.mosque", 1, "mosques_affairs", 0.0, True),
    ),
    priorities=(("low", 1.0),),
    timing=(("low", _gov(Delay(2, 0.7, 0.03, 12, 8), Delay(6, 0.5, 0.03, 50, 40))),),
    assign_share=0.2,
    pause_share=0.0,
    reopen_share=0.0,
    escalate_share=0.0,
    resolutions=("thanked",),
)

TICKET_CLASSES: tuple[TicketClass, ...] = (
    REQUEST,
    FACILITY_REPORT,
    COMPLAINT,
    SUGGESTION,
    INQUIRY,
    COMPLIMENT,
)
