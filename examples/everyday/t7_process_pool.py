from everyday_data import BLOBS, check_t7, digest

from mimo import lib

if __name__ == "__main__":
    hashes = lib.from_iterable(BLOBS) | lib.map(digest, workers=4, executor="process")
    check_t7(hashes.to_list())
