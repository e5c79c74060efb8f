import json

from everyday_data import OUT, check_t6, irregular

from mimo import lib

batches = lib.from_async_iterable(irregular()) | lib.batch(100, timeout=0.05)
(batches | lib.map(json.dumps) | lib.to_file(OUT)).run()
check_t6()
