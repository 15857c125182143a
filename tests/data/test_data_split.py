from collections import Counter

from coverforge.data.process import CoverResult, find_duplicates, stratified_split


def test_split_is_seeded_stratified_and_sized():
    strata = {i: ["Fantasy", "Romance", "Horror"][i % 3] if i < 90 else "Poetry" for i in range(100)}
    val = stratified_split(strata, 0.1, seed=0)
    assert len(val) == 10
    per = Counter(strata[k] for k in val)
    assert per["Fantasy"] == per["Romance"] == per["Horror"] == 3 and per["Poetry"] == 1
    assert stratified_split(strata, 0.1, seed=0) == val
    assert stratified_split(strata, 0.1, seed=1) != val
    assert stratified_split(strata, 0.0, seed=0) == set()


def test_duplicates_keep_the_largest_then_lowest_row():
    def r(key, w, px, p, d):
        return CoverResult(key, file_name=f"{key}.jpg", width=w, height=w, pixels_sha256=px, phash=p, dhash=d)

    results = [r(0, 300, "a", 0b1111, 0b1111), r(1, 300, "a", 0b1111, 0b1111), r(2, 600, "b", 0b1110, 0b1111),
               r(3, 300, "c", 0xFFFF0000, 0x0F0F0F0F)]
    dup = find_duplicates(results, max_distance=2)
    assert dup == {0: (2, "near"), 1: (2, "near")}
    assert find_duplicates(results, max_distance=None) == {1: (0, "exact")}
