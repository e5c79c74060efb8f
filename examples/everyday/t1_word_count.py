from everyday_data import TEXT, check_t1

from mimo import lib

lines = lib.file_lines(TEXT) | lib.map(str.strip) | lib.filter(bool)
check_t1((lines | lib.flat_map(str.split)).to_list())
