"""Oracle price files: the HDF5 reader (both layouts), the choice of reader by file
name, and the checks that refuse an unusable file before a run. Serial; no MPI."""

import h5py
import numpy as np
import pytest

from tokensim_hpc.io.prices import read_hdf5_prices
from tokensim_hpc.markets.oracle import check_price_file, read_prices

ETH = np.array([3000.0, 3010.5, 2990.25, 3100.0, 3050.0])
BTC = np.array([60000.0, 60100.0, 59000.0, 61000.5, 60500.0])


def _closed(path):
    """The reader left no HDF5 file open, and the file can be opened for writing again."""
    assert h5py.h5f.get_obj_count(h5py.h5f.OBJ_ALL, h5py.h5f.OBJ_FILE) == 0
    with h5py.File(path, "a") as f:
        f.attrs["touched"] = 1


@pytest.fixture
def table(tmp_path):
    """/prices: 2-D (ticks, 3) with a 'columns' attribute; /other: the same under
    'labels' (fixed-length bytes); /feeds/hourly: one 1-D dataset per asset."""
    path = tmp_path / "prices.h5"
    with h5py.File(path, "w") as f:
        data = np.stack([BTC, np.full(5, 1.0), ETH], axis=1)
        f.create_dataset("prices", data=data).attrs["columns"] = ["BTC", "USDC", "ETH"]
        other = f.create_dataset("other", data=data[:, [2, 0]].astype(np.float32))
        other.attrs["labels"] = np.array([b"ETH", b"BTC"])
        g = f.create_group("feeds/hourly")
        g.create_dataset("ETH", data=ETH)
        g.create_dataset("BTC", data=BTC)
        g.create_dataset("SOL", data=np.arange(1.0, 3.0))  # unused: its length is ignored
    return path


def test_reads_the_columns_of_a_2d_dataset_in_the_order_asked(table):
    got = read_hdf5_prices(str(table), "/prices", ["ETH", "BTC"])
    assert got.dtype == np.float64 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, np.stack([ETH, BTC], axis=1))
    np.testing.assert_array_equal(read_hdf5_prices(str(table), "prices", ["BTC"]), BTC[:, None])
    other = read_hdf5_prices(str(table), "/other", ["BTC", "ETH"])
    np.testing.assert_array_equal(other, np.stack([BTC, ETH], axis=1).astype(np.float32))
    _closed(table)


def test_reads_a_group_of_1d_datasets(table):
    got = read_hdf5_prices(str(table), "/feeds/hourly", ["BTC", "ETH"])
    np.testing.assert_array_equal(got, np.stack([BTC, ETH], axis=1))
    assert got.shape == (5, 2)
    _closed(table)


def test_the_file_name_chooses_the_reader(table, tmp_path):
    h5 = np.stack([ETH], axis=1)
    np.testing.assert_array_equal(read_prices(str(table), ["ETH"]), h5)  # default /prices
    np.testing.assert_array_equal(read_prices(f"{table}:/feeds/hourly", ["ETH"]), h5)
    alias = tmp_path / "prices.HDF5"
    alias.write_bytes(table.read_bytes())
    np.testing.assert_array_equal(read_prices(f"{alias}:/other", ["ETH"]), h5)
    csv = tmp_path / "prices.csv"
    rows = "".join(f"{b!r},{e!r}\n" for b, e in zip(BTC, ETH, strict=True))
    csv.write_text("BTC,ETH\n" + rows)
    np.testing.assert_array_equal(read_prices(str(csv), ["ETH"]), h5)
    with pytest.raises(ValueError, match="no dataset named after ':'"):
        read_prices(f"{table}:", ["ETH"])


@pytest.mark.parametrize("dataset, assets, message", [
    ("/missing", ["ETH"], "no dataset or group '/missing'"),
    ("/prices", ["ETH", "DOGE"],
     r"prices.h5:/prices: no column 'DOGE' \(columns: BTC, USDC, ETH\)"),
    ("/feeds/hourly", ["DOGE"], r"no dataset 'DOGE' \(datasets: BTC, ETH, SOL\)"),
    ("/feeds/hourly", ["ETH", "SOL"], r"differ in length \(ETH: 5, SOL: 2\)"),
    ("/feeds/hourly/ETH", ["ETH"], r"has shape \(5,\); a price table is 2-D"),
])
def test_refuses_what_it_cannot_use(table, dataset, assets, message):
    with pytest.raises(ValueError, match=message):
        read_hdf5_prices(str(table), dataset, assets)
    _closed(table)


def test_refuses_a_table_without_names_or_numbers(tmp_path):
    path = tmp_path / "odd.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("prices", data=np.ones((3, 2)))
        f.create_dataset("short", data=np.ones((3, 2))).attrs["columns"] = ["ETH"]
        f.create_dataset("text", data=np.array([[b"1"]])).attrs["columns"] = ["ETH"]
    with pytest.raises(ValueError, match="no attribute 'columns'"):
        read_hdf5_prices(str(path), "/prices", ["ETH"])
    with pytest.raises(ValueError, match="has 2 columns but its attribute 'columns' names 1"):
        read_hdf5_prices(str(path), "/short", ["ETH"])
    with pytest.raises(ValueError, match=r"text holds \|S1 values, not numbers"):
        read_hdf5_prices(str(path), "/text", ["ETH"])
    _closed(path)


def test_missing_or_foreign_files_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"nope.h5: cannot be read \(no such file\)"):
        check_price_file(str(tmp_path / "nope.h5"), ["ETH"], 3)
    fake = tmp_path / "fake.h5"
    fake.write_text("ETH\n1.0\n")
    with pytest.raises(ValueError, match="fake.h5: cannot be read as HDF5"):
        check_price_file(str(fake), ["ETH"], 0)
    with pytest.raises(ValueError, match="nope.csv: cannot be read"):
        check_price_file(str(tmp_path / "nope.csv"), ["ETH"], 3)


def _h5(tmp_path, eth):
    path = tmp_path / "p.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("prices", data=np.asarray(eth, dtype=float)[:, None]).attrs[
            "columns"] = ["ETH"]
    return str(path)


def test_check_needs_a_row_per_tick_from_tick_0(tmp_path):
    path = _h5(tmp_path, ETH)
    check_price_file(path, ["ETH"], 4)  # 5 rows: ticks 0..4
    with pytest.raises(ValueError, match="has 5 rows; a run of 5 ticks needs 6"):
        check_price_file(path, ["ETH"], 5)
    csv = tmp_path / "empty.csv"
    csv.write_text("ETH\n")
    with pytest.raises(ValueError, match="has 0 rows; a run of 0 ticks needs 1"):
        check_price_file(str(csv), ["ETH"], 0)


@pytest.mark.parametrize("value, tick, smoothed, ok", [
    (0.0, 2, False, False), (-1.0, 1, True, False), (np.inf, 3, False, False),
    (np.nan, 0, True, False), (np.nan, 2, False, False), (np.nan, 2, True, True),
])
def test_check_needs_finite_positive_prices_in_the_ticks_used(tmp_path, value, tick,
                                                               smoothed, ok):
    eth = ETH.copy()
    eth[tick] = value
    eth_csv = tmp_path / "p.csv"
    eth_csv.write_text("ETH\n" + "".join(f"{v!r}\n" for v in eth))
    for path in (_h5(tmp_path, eth), str(eth_csv)):
        if tick:
            check_price_file(path, ["ETH"], tick - 1, smoothed)  # the bad row is not used
        if ok:
            check_price_file(path, ["ETH"], 4, smoothed)
            continue
        with pytest.raises(ValueError, match=f"the price of ETH at tick {tick} is "
                                             f"{float(value)!r}; prices must be finite") as e:
            check_price_file(path, ["ETH"], 4, smoothed)
        assert ("allowed after tick 0 only with the Kalman" in str(e.value)) == (
            np.isnan(value) and tick > 0)
