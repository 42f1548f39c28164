"""Regions as the control plane records them (read-only: only the loop changes them)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from switchyard.api.deps import SessionDep, Viewer
from switchyard.api.problems import ApiError
from switchyard.api.schemas import REGION_NAME, RegionList, RegionOut
from switchyard.db.regions import get_region, list_regions
from switchyard.errors import NotFoundError

router = APIRouter(prefix="/v1/regions", tags=["regions"])


@router.get("", response_model=RegionList)
def regions(session: SessionDep, _: Viewer) -> RegionList:
    return RegionList(items=[RegionOut.of(r) for r in list_regions(session=session)])


@router.get("/{name}", response_model=RegionOut, responses={404: {"description": "Unknown region"}})
def region(
    name: Annotated[str, Path(pattern=REGION_NAME)], session: SessionDep, _: Viewer
) -> RegionOut:
    try:
        return RegionOut.of(get_region(session=session, name=name))
    except NotFoundError:
        raise ApiError(
            404, "region_not_found", f"no region named {name!r}", field="path.name"
        ) from None
