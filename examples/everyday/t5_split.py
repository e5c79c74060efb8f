from everyday_data import RECORDS, check_t5, clean, is_valid, reason

from mimo import lib

records = lib.split(is_valid)
lib.from_iterable(RECORDS) | records
valid: list[str] = []
records.matched | lib.map(clean) | lib.collect(valid)
check_t5(valid, (records.unmatched | lib.map(reason)).to_list())
