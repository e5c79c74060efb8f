"""Several inputs and several outputs, wired by port name with `>>`.

`pricing` has two inputs (orders and a price list) and two outputs (priced
lines and rejected orders). Its priced lines fan out to two sinks. The whole
graph is one, however many `>>` built it; it runs from any of their results,
and converts to a classic Workflow (here, to print it as a Mermaid chart).
"""

from dataclasses import dataclass

from mimo import In, Out, stream


@dataclass(frozen=True)
class Order:
    item: str
    quantity: int


@dataclass(frozen=True)
class Line:
    item: str
    quantity: int
    amount: float


@stream
async def orders(out: Out[Order]) -> None:
    for item, quantity in [("tea", 2), ("cake", 1), ("coffee", 3), ("tea", 1), ("scone", 4)]:
        await out.push(Order(item, quantity))


@stream
async def price_list(out: Out[tuple[str, float]]) -> None:
    for entry in [("tea", 2.5), ("coffee", 3.0), ("scone", 1.75)]:
        await out.push(entry)


@stream
async def pricing(orders: In[Order], prices: In[tuple[str, float]], priced: Out[Line], rejected: Out[str]) -> None:
    known = {item: price async for item, price in prices}
    async for order in orders:
        if order.item in known:
            await priced.push(Line(order.item, order.quantity, order.quantity * known[order.item]))
        else:
            await rejected.push(f"no price for {order.item!r}")


totals: dict[str, float] = {}


@stream
async def tally(lines: In[Line]) -> None:
    async for line in lines:
        totals[line.item] = totals.get(line.item, 0.0) + line.amount


@stream
async def ledger(lines: In[Line]) -> None:
    async for line in lines:
        print(f"{line.quantity} x {line.item:<6} {line.amount:6.2f}")


@stream
async def audit(reasons: In[str]) -> None:
    async for reason in reasons:
        print("rejected:", reason)


def main() -> int:
    orders.out["out"] >> pricing.in_["orders"]
    price_list.out["out"] >> pricing.in_["prices"]
    pricing.out["priced"] >> tally.in_["lines"]
    pricing.out["priced"] >> ledger.in_["lines"]  # fan-out: every line reaches both
    graph = pricing.out["rejected"] >> audit.in_["reasons"]

    report = graph.run()
    print("total:", f"{sum(totals.values()):.2f}", "over", report["tally"].items_in["lines"], "lines")
    print(graph.workflow().to_mermaid(), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
