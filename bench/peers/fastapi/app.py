"""The FastAPI async lesson (Day 53, /work/shared/reference/fastapi-async-lesson.md), ported to
data-api's PostgreSQL database: the peer that data-api is benchmarked against.

It is the lesson's app, written the lesson's way (plain FastAPI, `async def` routes,
`asyncio.gather`), with real queries on data-api's tables where the lesson stands in for a
database with `asyncio.sleep`. Routes, query parameters, SQL and response shapes (field names)
follow data-api's TypeScript routes, so both servers answer the same URLs from the same rows:

  GET /healthz                   {"status": "ok"}: no I/O (the "hello JSON" baseline)
  GET /users                     the first 10 users, in id order, on the shared pool
  GET /users-pool-per-request    the same, the lesson's literal way: a new pool per request
  GET /users/{user_id}           one user (404 when missing)
  GET /dashboard?user_id=1       user, 10 recent orders and order stats, gathered concurrently
  GET /slow?user_id=1&delay_ms=1000   pg_sleep + user, then pg_sleep + orders, on ONE connection
  GET /fast?user_id=1&delay_ms=1000   the same two fetches gathered, on two pool connections
  GET /datasets/{dataset_id}     data set row, its columns and its stats, gathered concurrently
  GET /sync?seconds=2            `def` route: time.sleep in FastAPI's thread pool
  GET /async?seconds=2           `async def` route: asyncio.sleep
  GET /sync-in-async?seconds=2   the "don't mix" pitfall: time.sleep in an `async def` route
                                 blocks the event loop, and with it every other request
  GET /sync-slow?n=10&seconds=1  n blocking sleeps in sequence (`def` route)
  GET /async-fast?n=10&seconds=1 n asyncio.sleeps gathered
  GET /compute?n=1000000         `def` route: primes below n, the same sieve as data-api's

Dates are serialised by FastAPI (datetime.isoformat(): "2024-05-01T12:00:00+00:00", where
data-api writes "2024-05-01T12:00:00.000Z": the same instant); numeric amounts as floats.

Environment: DATABASE_URL (postgres://user:password@host:port/db, required) and
DATABASE_POOL_MAX (default 10, like data-api's). Run with one worker, as the benchmark does:

  DATABASE_URL=postgres://… python -m uvicorn app:app --host 127.0.0.1 --port 8000 --workers 1
"""

import asyncio
import json
import os
import time
from contextlib import asynccontextmanager
from typing import Annotated

import asyncpg
from fastapi import FastAPI, HTTPException, Path, Query

DATABASE_URL = os.environ["DATABASE_URL"]
POOL_MAX = int(os.environ.get("DATABASE_POOL_MAX", "10"))
RECENT_ORDERS = 10
MAX_ID = 2**53 - 1  # ids beyond JavaScript's safe integers are refused by data-api too

UserId = Annotated[int, Query(ge=1, le=MAX_ID)]
DelayMs = Annotated[int, Query(ge=0, le=5000)]

# The same SQL as data-api's src/routes/users/repository.ts and src/datasets/service.ts.
USER_SQL = "SELECT id AS user_id, name, email, created_at FROM users WHERE id = $1"
USERS_SQL = "SELECT id AS user_id, name, email, created_at FROM users ORDER BY id LIMIT 10"
ORDERS_SQL = """
    SELECT id AS order_id, amount::float8 AS amount, status, created_at FROM orders
    WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"""
ORDER_STATS_SQL = """
    SELECT count(*)::int AS count, coalesce(sum(amount), 0)::float8 AS total,
           round(avg(amount), 2)::float8 AS average
    FROM orders WHERE user_id = $1"""
DATASET_SQL = "SELECT * FROM datasets WHERE id = $1"
COLUMNS_SQL = """
    SELECT position, name, type, nullable FROM dataset_columns
    WHERE dataset_id = $1 ORDER BY position"""
DATASET_STATS_SQL = "SELECT stats, computed_at FROM dataset_stats WHERE dataset_id = $1"
# The data set fields data-api's response schema lets through (not created_by).
DATASET_FIELDS = ("id", "name", "description", "status", "rows", "bytes", "source",
                  "source_url", "format", "error", "key", "created_at", "updated_at")

pool: asyncpg.Pool


async def init_connection(conn: asyncpg.Connection) -> None:
    # json/jsonb as Python values (asyncpg hands them over as text otherwise).
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(type_name, encoder=json.dumps, decoder=json.loads,
                                  schema="pg_catalog")


@asynccontextmanager
async def lifespan(app: FastAPI):
    # One pool for the life of the process, like data-api's (the lesson makes one per request).
    global pool
    pool = await asyncpg.create_pool(DATABASE_URL, min_size=POOL_MAX, max_size=POOL_MAX,
                                     init=init_connection)
    try:
        yield
    finally:
        await pool.close()


app = FastAPI(lifespan=lifespan)


@app.get("/healthz")
async def healthz():
    return {"status": "ok"}


# --- Users and orders: the lesson's fetch_user(), fetch_orders(), fetch_stats(), for real. ----
# `db` is the pool (each query on any free connection) or one acquired connection.

async def fetch_user(db, user_id: int):
    row = await db.fetchrow(USER_SQL, user_id)
    if row is None:
        raise HTTPException(status_code=404, detail=f"There is no user {user_id}.")
    return dict(row)


async def fetch_orders(db, user_id: int):
    rows = await db.fetch(ORDERS_SQL, user_id, RECENT_ORDERS)
    return [dict(row) for row in rows]


async def fetch_stats(db, user_id: int):
    return dict(await db.fetchrow(ORDER_STATS_SQL, user_id))


async def pause(db, delay_ms: int) -> None:
    """Database-side latency: the lesson's `await asyncio.sleep(1)` stand-in, in PostgreSQL."""
    if delay_ms > 0:
        await db.execute("SELECT pg_sleep($1)", delay_ms / 1000)


async def slow_user(db, user_id: int, delay_ms: int):
    await pause(db, delay_ms)
    return await fetch_user(db, user_id)


async def slow_orders(db, user_id: int, delay_ms: int):
    await pause(db, delay_ms)
    return await fetch_orders(db, user_id)


@app.get("/users")
async def list_users():
    async with pool.acquire() as conn:
        rows = await conn.fetch(USERS_SQL)
        return [dict(row) for row in rows]


async def get_db_pool():
    return await asyncpg.create_pool(DATABASE_URL)


@app.get("/users-pool-per-request")
async def list_users_pool_per_request():
    # The lesson's /users as written: a new pool for every request. asyncpg's defaults
    # (min_size=10) open ten connections before the query runs, so each request pays ten
    # connection handshakes, and N concurrent requests want 10 × N server connections.
    pool = await get_db_pool()
    try:
        async with pool.acquire() as conn:
            rows = await conn.fetch(USERS_SQL)
            return [dict(row) for row in rows]
    finally:
        # Not in the lesson, which never closes its pools: without this every request would
        # leak ten connections until PostgreSQL refuses new ones ("too many clients").
        await pool.close()


@app.get("/users/{user_id}")
async def get_user(user_id: Annotated[int, Path(ge=1, le=MAX_ID)]):
    return await fetch_user(pool, user_id)


@app.get("/dashboard")
async def get_dashboard(user_id: UserId = 1):
    user, orders, stats = await asyncio.gather(
        fetch_user(pool, user_id),
        fetch_orders(pool, user_id),
        fetch_stats(pool, user_id),
    )
    return {"user": user, "orders": orders, "stats": stats}


# Sequential: the sum of both latencies, on one connection (the lesson's `async with`).
@app.get("/slow")
async def slow_endpoint(user_id: UserId = 1, delay_ms: DelayMs = 1000):
    async with pool.acquire() as conn:
        user = await slow_user(conn, user_id, delay_ms)
        orders = await slow_orders(conn, user_id, delay_ms)
    return {"user": user, "orders": orders}


# Concurrent: the longest latency, on two pool connections.
@app.get("/fast")
async def fast_endpoint(user_id: UserId = 1, delay_ms: DelayMs = 1000):
    user, orders = await asyncio.gather(
        slow_user(pool, user_id, delay_ms),
        slow_orders(pool, user_id, delay_ms),
    )
    return {"user": user, "orders": orders}


# --- Data API example: dataset info, schema and stats, concurrently. ---------------------------

async def fetch_dataset(dataset_id: int):
    row = await pool.fetchrow(DATASET_SQL, dataset_id)
    if row is None:
        raise HTTPException(status_code=404, detail=f"There is no data set {dataset_id}.")
    return {field: row[field] for field in DATASET_FIELDS}


async def fetch_schema(dataset_id: int):
    rows = await pool.fetch(COLUMNS_SQL, dataset_id)
    return {
        "columns": [row["name"] for row in rows],
        "fields": [{"name": row["name"], "type": row["type"], "nullable": row["nullable"]}
                   for row in rows],
    }


async def fetch_dataset_stats(dataset_id: int):
    row = await pool.fetchrow(DATASET_STATS_SQL, dataset_id)
    return None if row is None else dict(row)


@app.get("/datasets/{dataset_id}")
async def get_dataset_info(dataset_id: Annotated[int, Path(ge=1, le=MAX_ID)]):
    dataset, schema, stats = await asyncio.gather(
        fetch_dataset(dataset_id),
        fetch_schema(dataset_id),
        fetch_dataset_stats(dataset_id),
    )
    return {
        "dataset": dataset,
        "schema": schema,
        "stats": {
            "count": dataset["rows"],
            "computed_at": None if stats is None else stats["computed_at"],
            "columns": {} if stats is None else stats["stats"].get("columns", {}),
        },
    }


# --- Waiting and computing: when to use async, when sync. --------------------------------------

# Sync (runs in FastAPI's thread pool: holds a thread, not the event loop)
@app.get("/sync")
def sync_endpoint(seconds: Annotated[float, Query(ge=0, le=10)] = 2):
    time.sleep(seconds)
    return {"message": "Done"}


# Async (non-blocking: other requests are served during the wait)
@app.get("/async")
async def async_endpoint(seconds: Annotated[float, Query(ge=0, le=10)] = 2):
    await asyncio.sleep(seconds)
    return {"message": "Done"}


# The pitfall ("don't mix sync/async"): a blocking call inside `async def` runs on the event
# loop itself, so the whole server stands still for `seconds`.
@app.get("/sync-in-async")
async def sync_in_async(seconds: Annotated[float, Query(ge=0, le=10)] = 2):
    time.sleep(seconds)
    return {"message": "Done"}


@app.get("/sync-slow")
def sync_slow(n: Annotated[int, Query(ge=1, le=20)] = 10,
              seconds: Annotated[float, Query(ge=0, le=5)] = 1):
    return [time.sleep(seconds) or "done" for _ in range(n)]


@app.get("/async-fast")
async def async_fast(n: Annotated[int, Query(ge=1, le=20)] = 10,
                     seconds: Annotated[float, Query(ge=0, le=5)] = 1):
    tasks = [asyncio.sleep(seconds) for _ in range(n)]
    await asyncio.gather(*tasks)
    return ["done"] * n


def count_primes(n: int) -> int:
    """The number of primes below n: data-api's countPrimes (src/compute/tasks.ts) line by line,
    a sieve of Eratosthenes over the odd numbers."""
    if n <= 2:
        return 0
    # Index i stands for the odd number 2i + 1; index 0 (the number 1) is not prime.
    size = (n - 1) // 2
    composite = bytearray(size + 1)
    count = 1  # the prime 2
    for i in range(1, size + 1):
        value = 2 * i + 1
        if value >= n:
            break
        if composite[i]:
            continue
        count += 1
        for multiple in range(value * value, n, 2 * value):
            composite[(multiple - 1) // 2] = 1
    return count


# CPU-bound: a `def` route, as the lesson advises (it runs in the thread pool; the GIL still
# keeps other Python code waiting while it computes).
@app.get("/compute")
def compute(n: Annotated[int, Query(ge=2, le=50_000_000)] = 1_000_000):
    started = time.perf_counter()
    result = count_primes(n)
    return {"n": n, "result": result,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1)}
