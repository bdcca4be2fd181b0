"""The ceiling endpoints, served by uvicorn in their own process (see ``common.ceiling``)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi import FastAPI, Request

bare_app = FastAPI()


@bare_app.get("/ready")
async def bare_ready() -> dict[str, str]:
    return {"status": "ok"}


@bare_app.post("/post", status_code=201)
async def bare_post(request: Request) -> dict[str, Any]:
    await request.body()
    return {"status": "ok"}


@asynccontextmanager
async def _pool(app: FastAPI) -> AsyncIterator[None]:
    pool = await asyncpg.create_pool(os.environ["BENCH_DATABASE_URL"], min_size=10, max_size=20)
    assert pool is not None
    async with pool.acquire() as conn:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS ceiling_rows (id bigserial PRIMARY KEY, body jsonb,"
            " created_at timestamptz DEFAULT now())"
        )
    app.state.pool = pool
    yield
    await pool.close()


insert_app = FastAPI(lifespan=_pool)


@insert_app.get("/ready")
async def insert_ready() -> dict[str, str]:
    return {"status": "ok"}


@insert_app.post("/post", status_code=201)
async def insert_post(request: Request) -> dict[str, Any]:
    body = await request.body()
    async with request.app.state.pool.acquire() as conn:
        row_id = await conn.fetchval(
            "INSERT INTO ceiling_rows (body) VALUES ($1::jsonb) RETURNING id", body.decode()
        )
    return {"id": row_id}
