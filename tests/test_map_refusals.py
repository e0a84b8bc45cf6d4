"""What cannot give a meaningful map is refused in one line before any map is written: a stack
outside the model's season, a region without a pixel with enough valid observations, coordinates
in the wrong CRS, an unusable output folder."""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import pytest
import yaml

from pimc_core.cli import main
from pimc_core.datasets.synthetic import make_synthetic
from pimc_core.errors import ConfigError, InputError
from pimc_core.io.regions import bbox_region
from pimc_core.io.timeseries import open_series
from pimc_core.maps.engine import cluster_map, run_inference
from pimc_core.maps.season import check_season
from pimc_core.models.centroid import NearestCentroidModel
from tests.conftest import left_nothing

COMPAT = Path(__file__).parent / "data" / "compat_89cc375"
TINY_GRID = {
    "data": {"pretrain_samples": 128, "patch_size": 0, "dates": "grid", "step_days": 30, "n_dates": 24},
    "model": {"rp_encoder": {"width": 4, "depth": 2, "embed_dim": 8},
              "series_encoder": {"width": 4, "depth": 1, "embed_dim": 8},
              "patch_encoder": {"width": 4, "depth": 1, "embed_dim": 8}, "proj_dim": 8},
    "pretrain": {"steps": 2, "batch_size": 64, "warmup_steps": 1},
    "forecast": {"finetune": {"epochs": 1, "batch_size": 64}},
    "threads": 1,
}


def redated(manifest: Path, out: Path, shift) -> Path:
    """A copy of a manifest pointing at the same files, every date moved by ``shift(date)``; the
    items of several manifests are concatenated when ``manifest`` is a list."""
    sources = manifest if isinstance(manifest, list) else [manifest]
    head = yaml.safe_load(Path(sources[0]).read_text())
    items = []
    for m in sources:
        for it in yaml.safe_load(Path(m).read_text())["items"]:
            date = it["date"] if isinstance(it["date"], dt.date) else dt.date.fromisoformat(it["date"])
            items.append({"date": shift(date), "path": str(Path(m).parent / it["path"])})
    head["items"] = items
    out.write_text(yaml.safe_dump(head, sort_keys=False))
    return out


def years(n):
    return lambda d: d.replace(year=d.year + n)


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    return code, out, lines


# ----------------------------------------------------------------------------- season
@pytest.fixture(scope="module")
def grid_model(tmp_path_factory):
    """A label-free model on a 30-day date grid of two years (2022-2023), like the Landsat
    model of ``fit_landsat.yaml`` on its 2008-2013 grid, and the stacks it is tried on."""
    from pimc_core.fit import fit

    root = tmp_path_factory.mktemp("grid")
    a = make_synthetic(root / "y22", size=16, n_dates=8, seed=1, year=2022)
    b = make_synthetic(root / "y23", size=16, n_dates=8, seed=1, year=2023)
    two = redated([a.manifest, b.manifest], root / "two.yaml", years(0))
    fit(str(two), None, root / "grid.pimc", config=TINY_GRID, progress=False)
    return root / "grid.pimc", two, b.manifest


def test_a_model_applied_outside_its_season_is_refused_naming_both_spans(grid_model, capsys, tmp_path):
    model, two_years, one_year = grid_model
    code, out, lines = cli(capsys, "embed", one_year, "--model", model, "--out", tmp_path / "o", "--quiet")
    assert code == 2 and out == "" and len(lines) == 1, lines
    assert re.search(r"model grid\.pimc was trained on the season 2022-01-01\.\.2023-11-22 \(24 dates\); "
                     r".*y23/manifest\.yaml has 8 dates 2023-\d\d-\d\d\.\.2023-\d\d-\d\d", lines[0]), lines[0]
    assert not os.path.exists(tmp_path / "o") or os.listdir(tmp_path / "o") == []


def test_the_same_season_of_other_years_is_accepted(grid_model, capsys, tmp_path):
    model, two_years, _ = grid_model
    later = redated(two_years, tmp_path / "later.yaml", years(2))  # 2024-2025
    code, out, lines = cli(capsys, "embed", later, "--model", model, "--out", tmp_path / "o", "--quiet")
    assert code == 0, lines
    assert os.listdir(tmp_path / "o") == ["embeddings.tif"]


def test_a_model_of_observed_dates_needs_the_same_part_of_a_year(capsys, tmp_path):
    model = COMPAT / "model.pimc"
    stack = COMPAT / "stack" / "manifest.yaml"
    next_year = redated(stack, tmp_path / "2024.yaml", years(1))
    code, _, lines = cli(capsys, "classify", next_year, "--model", model, "--out", tmp_path / "a", "--quiet")
    assert code == 0, lines
    half_a_year = redated(stack, tmp_path / "shifted.yaml", lambda d: d + dt.timedelta(days=182))
    code, _, lines = cli(capsys, "classify", half_a_year, "--model", model, "--out", tmp_path / "b", "--quiet")
    assert code == 2 and len(lines) == 1
    assert "model model.pimc was trained on the season 2023-01-17..2023-12-11 (10 dates" in lines[0]
    assert "shifted.yaml has 10 dates 2023-07-18..2024-06-10" in lines[0]
    assert left_nothing(tmp_path / "b")


class GridBaseline(NearestCentroidModel):
    """The baseline on a fixed date grid bound to the stack's year, with a training season."""

    def __init__(self, grid, **kw):
        super().__init__(NearestCentroidModel.for_synthetic().class_table,
                         curves=NearestCentroidModel.for_synthetic().curves, **kw)
        self.training_dates = list(grid)
        self.grid = list(grid)

    def prepare(self, source):
        year = source.dates[0].year - self.grid[0].year
        self.target_dates = [d.replace(year=d.year + year) for d in self.grid]
        super().prepare(source)


@pytest.mark.parametrize("first, last, ok", [
    ((2023, 1, 1), (2023, 12, 27), True),  # the stack's own year
    ((2020, 1, 1), (2020, 12, 26), True),  # another year (leap)
    ((2023, 1, 1), (2023, 6, 30), True),  # a half-year model on a year: the grid is covered
    ((2023, 1, 1), (2025, 12, 27), False),  # three years of grid on a one-year stack
    ((2023, 7, 1), (2024, 6, 25), False),  # July to June on a January–December stack
])
def test_season_rule_for_a_date_grid(tiny_sample, first, last, ok):
    ts = open_series(tiny_sample.manifest)
    start, end = dt.date(*first), dt.date(*last)
    grid = [start + dt.timedelta(days=10 * i) for i in range((end - start).days // 10 + 1)]
    model = GridBaseline(grid)
    model.prepare(ts)
    if ok:
        check_season(model, ts, "grid")
    else:
        with pytest.raises(ConfigError, match=r"model grid was trained on the season .* has 12 dates"):
            check_season(model, ts, "grid")


# ----------------------------------------------------------------------------- no valid pixel
@pytest.fixture(scope="module")
def cloudy(tmp_path_factory):
    """The 24² sample with every observation masked (no SCL class is valid)."""
    root = tmp_path_factory.mktemp("cloudy")
    s = make_synthetic(root, size=24, n_dates=6, seed=0)
    text = Path(s.manifest).read_text().replace("valid: [4, 5, 6]", "valid: [99]")
    assert "[99]" in text
    Path(s.manifest).write_text(text)
    return s.manifest


@pytest.mark.parametrize("command", [["classify"], ["embed"], ["cluster", "--k", "3"]])
def test_an_all_nodata_stack_is_refused(cloudy, capsys, tmp_path, command):
    code, out, lines = cli(capsys, *command, cloudy, "--model", "builtin:nearest-centroid", "--out", tmp_path / "o",
                           "--quiet")
    assert code == 2 and out == "" and len(lines) == 1
    assert lines[0] == (f"pimc: error: no pixel of the region (whole raster) has enough valid observations in "
                        f"{cloudy} (min_valid 3 of 6 dates); nothing was written")
    assert left_nothing(tmp_path / "o")


def test_a_region_without_a_valid_pixel_is_refused_and_older_maps_stay(tiny_sample, tmp_path):
    ts = open_series(tiny_sample.manifest)
    run_inference(ts, NearestCentroidModel.for_synthetic(), None, tmp_path, products=("classes",), block=8)
    before = (tmp_path / "classes.tif").read_bytes()
    region = bbox_region(ts.grid, (600000, 4899900, 600050, 4900000))
    never = NearestCentroidModel.for_synthetic(min_valid=len(ts.dates) + 1)
    with pytest.raises(InputError, match=r"no pixel of the region \(bbox 600000, 4899900, 600050, 4900000\) has "
                                         r"enough valid observations in .* \(min_valid 13 of 12 dates\)"):
        run_inference(ts, never, region, tmp_path, products=("classes", "confidence"), block=8)
    with pytest.raises(InputError, match="no pixel of the region"):
        cluster_map(ts, never, region, tmp_path, 3, block=8)
    assert sorted(os.listdir(tmp_path)) == ["classes.qml", "classes.tif"]
    assert (tmp_path / "classes.tif").read_bytes() == before


# ----------------------------------------------------------------------------- coordinates
@pytest.mark.parametrize("command, args, expected", [
    ("classify", ["--bbox", "600000", "4899840", "600160", "4900000", "--bbox-crs", "EPSG:4326"],
     "bbox 600000, 4899840, 600160, 4900000 (EPSG:4326): cannot be placed in EPSG:32631: they are not "
     "longitude/latitude degrees"),
    ("classify", ["--bbox", "-200", "-100", "200", "100", "--bbox-crs", "EPSG:4326"],
     "bbox -200, -100, 200, 100 (EPSG:4326): cannot be placed"),
    ("similar", ["--x", "600105", "--y", "4899895", "--crs", "EPSG:4326"],
     "point (600105, 4899895): cannot be placed in EPSG:32631"),
    ("classify", ["--polygon", '{"type": "Polygon", "coordinates": [[[600000, 4900000], [600205, 4900000], '
                  '[600000, 4899795], [600000, 4900000]]]}', "--polygon-crs", "EPSG:4326"],
     "GeoJSON polygon: cannot be placed in EPSG:32631"),
    ("classify", ["--polygon", "POLYGON((600000 4900000, 600205 4900000, 600000 4899795, 600000 4900000))",
                  "--polygon-crs", "EPSG:4326"],
     "polygon POLYGON((600000 4900000, 600205 49000...: cannot be placed in EPSG:32631"),
])
def test_coordinates_in_the_wrong_crs_are_one_line(tiny_sample, capsys, tmp_path, command, args, expected):
    code, out, lines = cli(capsys, command, tiny_sample.manifest, "--model", "builtin:nearest-centroid",
                           "--out", tmp_path / "o", "--quiet", *args)
    assert code == 2 and out == "" and len(lines) == 1, lines
    assert lines[0].startswith("pimc: error: ") and expected in lines[0], lines[0]
    flag = "--bbox-crs" if "--bbox" in args else "--crs" if "--x" in args else "--polygon-crs"
    assert lines[0].endswith(f"are these coordinates in EPSG:4326? (set their CRS with {flag})")


# ----------------------------------------------------------------------------- output folder
@pytest.mark.parametrize("make, expected", [
    (lambda p: p.write_text("x"), "is a file, not an output folder"),
    (lambda p: (p.parent / "file").write_text("x"), "cannot create the output folder (Not a directory)"),
])
def test_an_unusable_output_folder_is_refused_before_the_model_is_read(tiny_sample, capsys, tmp_path, make, expected):
    out = tmp_path / "out"
    make(out)
    if not out.exists():
        out = tmp_path / "file" / "out"
    # the model file does not exist: the folder is checked first, before any reading
    code, _, lines = cli(capsys, "classify", tiny_sample.manifest, "--model", tmp_path / "missing.pimc",
                         "--out", out, "--quiet")
    assert code == 2 and len(lines) == 1 and lines[0] == f"pimc: error: {out}: {expected}"


def test_the_windows_are_not_read_when_the_setup_is_refused(tiny_sample, tmp_path, monkeypatch):
    from pimc_core.io.timeseries import TimeSeries

    def no_read(*a, **k):
        raise AssertionError("a window was read")

    monkeypatch.setattr(TimeSeries, "read", no_read)
    ts = open_series(tiny_sample.manifest)
    late = GridBaseline([dt.date(2023, 1, 1) + dt.timedelta(days=30 * i) for i in range(36)])
    with pytest.raises(ConfigError, match="trained on the season"):
        run_inference(ts, late, None, tmp_path / "o")
    (tmp_path / "f").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        run_inference(ts, NearestCentroidModel.for_synthetic(), None, tmp_path / "f")
    assert left_nothing(tmp_path / "o")
