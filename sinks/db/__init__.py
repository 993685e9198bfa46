"""The SQL sink: schema (`models`), engine setup (`engine`), migrations (`migrate`),
idempotent upserts (`upserts`) and the batch writer (`writer`)."""
