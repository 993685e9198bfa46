"""Fixed reference data: Dubai areas, the mosque registry, call queues, service centres."""

from __future__ import annotations

import random
from dataclasses import dataclass

AREAS: tuple[tuple[str, float], ...] = (
    ("Deira", 5),
    ("Bur Dubai", 4),
    ("Al Karama", 3),
    ("Al Qusais", 5),
    ("Al Nahda", 3),
    ("Muhaisnah", 4),
    ("Al Twar", 2),
    ("Mirdif", 3),
    ("Al Warqa", 3),
    ("Al Mizhar", 2),
    ("Al Khawaneej", 2),
    ("Al Rashidiya", 2),
    ("Nad Al Sheba", 2),
    ("Nad Al Hamar", 1),
    ("Al Barsha", 4),
    ("Al Quoz", 3),
    ("Umm Suqeim", 3),
    ("Jumeirah", 3),
    ("Al Safa", 2),
    ("Al Wasl", 2),
    ("Al Satwa", 2),
    ("Al Jaddaf", 1),
    ("Oud Metha", 1),
    ("Al Garhoud", 1),
    ("Hor Al Anz", 2),
    ("Al Muteena", 1),
    ("Al Rigga", 1),
    ("Al Mamzar", 1),
    ("Jebel Ali", 2),
    ("Dubai Marina", 1),
    ("Al Furjan", 1),
    ("Dubai Silicon Oasis", 1),
    ("International City", 2),
    ("Al Awir", 1),
    ("Al Lisaili", 1),
    ("Hatta", 2),
    ("Jumeirah Village Circle", 1),
    ("Al Barsha South", 1),
    ("Umm Ramool", 1),
    ("Al Mankhool", 1),
)
MOSQUE_COUNT = 1_400
_REGISTRY_SEED = "tawasul-mosque-registry-v1"


@dataclass(frozen=True)
class Mosque:
    mosque_id: str
    area: str


def mosque_registry() -> tuple[Mosque, ...]:
    """The same simulated mosque list for every seed (ids MSQ-0001..., areas by population)."""
    rng = random.Random(_REGISTRY_SEED)
    names = [name for name, _ in AREAS]
    weights = [weight for _, weight in AREAS]
    areas = rng.choices(names, weights=weights, k=MOSQUE_COUNT)
    return tuple(Mosque(f"MSQ-{n + 1:04d}", area) for n, area in enumerate(areas))


@dataclass(frozen=True)
class Queue:
    """A call-centre queue: its share of calls (normal / Ramadan) and talk time."""

    name: str
    share: float
    ramadan_share: float
    talk_median_seconds: float
    agent_offset: int
    agent_pool: int


QUEUES: tuple[Queue, ...] = (
    Queue("general", 0.56, 0.50, 220.0, 0, 40),
    Queue("mosques", 0.20, 0.18, 195.0, 40, 20),
    Queue("zakat", 0.10, 0.22, 340.0, 60, 20),
    Queue("quran_centres", 0.14, 0.10, 180.0, 80, 20),
)
TALK_SIGMA = 0.55
WRAP_MEDIAN_SECONDS = 25.0
WRAP_SIGMA = 0.5
PATIENCE_MEDIAN_SECONDS = 240.0
PATIENCE_SIGMA = 1.0
ENGLISH_SHARE = 0.28


@dataclass(frozen=True)
class Service:
    name: str
    weight: float
    median_seconds: float


@dataclass(frozen=True)
class Centre:
    """A walk-in service centre with its counters and services."""

    centre_id: str
    share: float
    counters: int
    services: tuple[Service, ...]


CENTRES: tuple[Centre, ...] = (
    Centre(
        "main_building",
        0.38,
        8,
        (
            Service("charity_permits", 3, 720),
            Service("zakat", 2, 600),
            Service("fatwa", 2, 900),
            Service("new_muslims", 1, 1200),
            Service("general_enquiry", 3, 300),
        ),
    ),
    Centre(
        "mbr_islamic_culture_centre",
        0.14,
        4,
        (
            Service("new_muslims", 3, 1500),
            Service("islamic_culture_courses", 2, 600),
            Service("general_enquiry", 1, 300),
        ),
    ),
    Centre(
        "mosque_engineering_building",
        0.20,
        5,
        (
            Service("mosque_construction", 2, 1500),
            Service("mosque_maintenance", 3, 720),
            Service("mosque_naming", 1, 600),
        ),
    ),
    Centre(
        "maktoum_quran_centre",
        0.28,
        5,
        (
            Service("quran_enrolment", 4, 600),
            Service("quran_exam_booking", 2, 420),
            Service("certificates", 1, 300),
        ),
    ),
)
SERVICE_SIGMA = 0.5
