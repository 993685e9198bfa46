"""Refuse the placeholder secrets of docker-compose.yml unless a demo explicitly allows them.

```python
refuse_placeholder_secrets(os.environ)   # raises PlaceholderSecret naming the variable
```

docker-compose.yml gives every secret a working default that starts with `change-me` so that
`docker compose --profile demo up` runs out of the box; a real deployment must set its own.
A command started with such a value refuses to start, naming the variable (never the value),
unless `TAWASUL_ALLOW_DEMO_SECRETS=1`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final
from urllib.parse import urlsplit

PLACEHOLDER: Final = "change-me"
ENV_ALLOW: Final = "TAWASUL_ALLOW_DEMO_SECRETS"
SECRET_VARIABLES: Final = re.compile(
    r"TAWASUL_PSEUDONYM_KEY|TAWASUL_METRICS_TOKEN|TAWASUL_GATEWAY_\w+_SECRET|TAWASUL_GATEWAY_\w+_TOKEN"
)
ENV_DATABASE_URL: Final = "TAWASUL_DATABASE_URL"


class PlaceholderSecret(ValueError):
    """A secret still holds the placeholder of docker-compose.yml."""


def placeholder_variables(environ: Mapping[str, str]) -> list[str]:
    """The names of the variables whose secret is a placeholder, sorted."""
    found = [name for name, value in environ.items() if SECRET_VARIABLES.fullmatch(name) and PLACEHOLDER in value]
    url = environ.get(ENV_DATABASE_URL, "")
    if url:
        try:
            password = urlsplit(url).password or ""
        except ValueError:
            password = ""
        if PLACEHOLDER in password:
            found.append(f"{ENV_DATABASE_URL} (its password)")
    return sorted(found)


def refuse_placeholder_secrets(environ: Mapping[str, str]) -> None:
    """Raise `PlaceholderSecret` naming each placeholder secret, unless the demo allows them."""
    if environ.get(ENV_ALLOW, "").strip() == "1":
        return
    found = placeholder_variables(environ)
    if found:
        raise PlaceholderSecret(
            f"{', '.join(found)} still {'holds' if len(found) == 1 else 'hold'} the placeholder secret of "
            f"docker-compose.yml ('{PLACEHOLDER}...'): set a secret of your own, or {ENV_ALLOW}=1 for a demo"
        )
