"""What a route can ask for, as `Annotated` types: `SettingsDep`, `EngineDep`.

The values live on `app.state`, put there by `create_app`, so a test app gets its own.
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request
from sqlalchemy import Engine

from adapter.config import Settings


def app_settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


def app_engine(request: Request) -> Engine:
    return cast(Engine, request.app.state.engine)


SettingsDep = Annotated[Settings, Depends(app_settings)]
EngineDep = Annotated[Engine, Depends(app_engine)]
