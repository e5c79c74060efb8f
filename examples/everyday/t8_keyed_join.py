from everyday_data import Order, Payment, check_t8, orders, payments

from mimo import lib

joined = lib.join(orders(), payments(), key=lambda x: x.id)
pairs: list[tuple[Order, Payment]] = []
joined.matched | lib.collect(pairs)
check_t8(pairs, joined.unmatched.to_list())
