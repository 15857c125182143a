from coverforge.data.fetch import FetchOptions, fetch_all
from data_builders import save_cover
from data_server import CoverServer

FAST = FetchOptions(timeout=0.5, retries=2, backoff=0.05, workers=4)


def _jpeg(tmp_path, seed=0):
    return save_cover(tmp_path / f"src{seed}.jpg", 300, 450, seed=seed).read_bytes()


def test_download_outcomes(tmp_path):
    files = {f"/c{i}.jpg": _jpeg(tmp_path, i) for i in range(3)}
    with CoverServer(files) as s:
        urls = {
            "ok": s.url + "/c0.jpg",
            "redirect": s.url + "/redirect/c1.jpg",
            "flaky": s.url + "/flaky/x.jpg",
            "slow": s.url + "/slow/x.jpg",
            "truncated": s.url + "/truncated/x.jpg",
            "html": s.url + "/html/x.jpg",
            "fake": s.url + "/fake/x.jpg",
            "missing": s.url + "/nope.jpg",
            "bad": "ftp://example.invalid/x.jpg",
        }
        results = fetch_all(list(urls.values()), tmp_path / "dl", FAST)
        hits = dict(s.hits)
    r = {k: results[u] for k, u in urls.items()}
    assert r["ok"].path.read_bytes() == files["/c0.jpg"] and r["ok"].path.suffix == ".jpg"
    assert r["redirect"].path.read_bytes() == files["/c1.jpg"]
    assert r["flaky"].path is not None and hits["/flaky/x.jpg"] == 2  # 500, then success on retry
    assert r["slow"].path is None and "timed out" in r["slow"].error and "3 attempts" in r["slow"].error
    assert r["truncated"].path is None and "truncated" in r["truncated"].error
    assert r["html"].path is None and "Content-Type text/html" in r["html"].error and hits["/html/x.jpg"] == 1
    assert r["fake"].path is None and "magic bytes" in r["fake"].error
    assert r["missing"].path is None and r["missing"].error == "HTTP 404" and hits["/nope.jpg"] == 1
    assert r["bad"].path is None and "not an http" in r["bad"].error
    assert not list((tmp_path / "dl").glob("*.part"))


def test_size_cap(tmp_path):
    files = {"/big.jpg": _jpeg(tmp_path)}
    with CoverServer(files) as s:
        r = fetch_all([s.url + "/big.jpg"], tmp_path / "dl", FetchOptions(max_bytes=1000, retries=0))
    assert r[s.url + "/big.jpg"].path is None and "too large" in r[s.url + "/big.jpg"].error


def test_rerun_fetches_only_missing_files(tmp_path):
    files = {f"/c{i}.jpg": _jpeg(tmp_path, i) for i in range(4)}
    with CoverServer(files) as s:
        urls = [s.url + f"/c{i}.jpg" for i in range(4)]
        first = fetch_all(urls[:2], tmp_path / "dl", FAST)
        assert all(r.downloaded for r in first.values())
        second = fetch_all(urls, tmp_path / "dl", FAST)
        hits = dict(s.hits)
    assert [second[u].downloaded for u in urls] == [False, False, True, True]
    assert hits == {"/c0.jpg": 1, "/c1.jpg": 1, "/c2.jpg": 1, "/c3.jpg": 1}
    assert all(second[u].path.read_bytes() == files[f"/c{i}.jpg"] for i, u in enumerate(urls))
