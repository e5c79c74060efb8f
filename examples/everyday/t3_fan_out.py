from everyday_data import NUMBERS, check_t3, is_even, square

from mimo import lib

numbers = lib.from_iterable(NUMBERS)
evens: list[int] = []
numbers | lib.filter(is_even) | lib.collect(evens)
check_t3(evens, (numbers | lib.map(square)).to_list())
