"""A lambda given to lib.map or lib.filter after .then() is typed from the left; async functions keep their type."""

from dataclasses import dataclass
from typing import assert_type

from mimo import lib
from mimo.dsl import Source, StageStream


@dataclass
class Order:
    id: int
    amount: float


async def fetch_amount(order: Order) -> float:
    return order.amount


orders = lib.from_iterable([Order(1, 2.5), Order(2, 4.0)])
ids = orders.then(lib.map(lambda o: o.id))
assert_type(ids, Source[int])
amounts = orders.then(lib.map(fetch_amount))
assert_type(amounts, Source[float])
assert_type(lib.map(fetch_amount), StageStream[Order, float])
labels = ids.then(lib.map(lambda n: f"#{n}")).then(lib.map(str.upper))
assert_type(labels, Source[str])
assert_type(labels.to_list(), list[str])
big = orders.then(lib.filter(lambda o: o.amount > 3))
assert_type(big, Source[Order])
