from everyday_data import URLS, check_t2, fetch

from mimo import lib

check_t2((lib.from_iterable(URLS) | lib.map(fetch, workers=20)).to_list())
