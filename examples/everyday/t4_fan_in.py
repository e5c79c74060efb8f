from everyday_data import check_t4, digits, letters

from mimo import lib

check_t4(lib.merge(letters(), digits()).to_list())
