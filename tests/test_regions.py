"""Regions: whole raster, bbox in any CRS, polygons from WKT / GeoJSON / vector files, errors."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform_geom
from rasterio.windows import Window

from pimc_core.errors import ConfigError, InputError
from pimc_core.io.grid import Grid
from pimc_core.io.regions import (
    Region,
    bbox_region,
    geojson_region,
    parse_region,
    vector_file_region,
    whole_region,
    wkt_region,
)

# 40 x 30 px of 10 m, upper-left corner (600000, 4900000), UTM 31N
GRID = Grid(CRS.from_epsg(32631), Affine(10, 0, 600000, 0, -10, 4900000), width=40, height=30)
# cols 5..14, rows 10..19 (pixel centres inside), as a rectangle in map units
RECT = [(600050, 4899900), (600150, 4899900), (600150, 4899800), (600050, 4899800), (600050, 4899900)]
RECT_WKT = "POLYGON((" + ", ".join(f"{x} {y}" for x, y in RECT) + "))"
RECT_GEOM = {"type": "Polygon", "coordinates": [RECT]}


def full_mask(region: Region) -> np.ndarray:
    return region.mask(region.window)


def test_whole_region_covers_the_raster_in_blocks():
    r = whole_region(GRID)
    assert r.n_pixels == 1200 and r.mask(r.window) is None
    wins = list(r.windows(16))
    assert len(wins) == 6 and sum(int(w.width * w.height) for w in wins) == 1200
    assert r.out_grid == GRID


def test_bbox_region_in_raster_crs_and_in_lonlat():
    r = bbox_region(GRID, (600050, 4899800, 600150, 4899900))
    assert r.window == Window(5, 10, 10, 10) and r.n_pixels == 100
    assert r.out_grid.transform == Affine(10, 0, 600050, 0, -10, 4899900)
    # the same box in lon/lat: its enclosing box in UTM covers at least those pixels
    lonlat = transform_geom("EPSG:32631", "EPSG:4326", RECT_GEOM)["coordinates"][0]
    xs, ys = [p[0] for p in lonlat], [p[1] for p in lonlat]
    r2 = bbox_region(GRID, (min(xs), min(ys), max(xs), max(ys)), "EPSG:4326")
    w = r2.window
    assert w.col_off <= 5 and w.row_off <= 10 and w.col_off + w.width >= 15 and w.row_off + w.height >= 20
    assert w.width <= 12 and w.height <= 12


def test_region_windows_are_in_source_pixels_and_aligned_to_the_output():
    r = bbox_region(GRID, (600050, 4899700, 600390, 4899900))  # cols 5..38, rows 10..29
    wins = list(r.windows(16))
    assert wins[0] == Window(5, 10, 16, 16)
    assert r.local(wins[0]) == Window(0, 0, 16, 16)
    assert {(int(w.col_off), int(w.row_off)) for w in wins} == {(5, 10), (21, 10), (37, 10), (5, 26), (21, 26), (37, 26)}


def test_wkt_polygon_masks_pixel_centres():
    r = wkt_region(GRID, RECT_WKT)
    assert r.window == Window(5, 10, 10, 10) and r.n_pixels == 100
    # the hypotenuse x + y = 105 m (from the corner) passes between pixel centres
    tri = wkt_region(GRID, "POLYGON((600000 4900000, 600105 4900000, 600000 4899895, 600000 4900000))")
    m = full_mask(tri)
    assert m.shape == (11, 11)
    rows, cols = np.indices(m.shape)
    assert np.array_equal(m, cols + rows <= 9)
    assert tri.n_pixels == 55


def test_mask_per_block_equals_the_mask_of_the_whole_window():
    r = wkt_region(GRID, "POLYGON((600003 4899997, 600377 4899950, 600200 4899710, 600003 4899997))")
    whole = full_mask(r)
    for w in r.windows(7):
        loc = r.local(w)
        sl = (slice(int(loc.row_off), int(loc.row_off + loc.height)), slice(int(loc.col_off), int(loc.col_off + loc.width)))
        assert np.array_equal(r.mask(w), whole[sl])
    assert r.n_pixels == int(whole.sum())
    again = pickle.loads(pickle.dumps(r))
    assert again == r and again.n_pixels == r.n_pixels


def test_geojson_text_in_lonlat_and_with_a_crs():
    lonlat = transform_geom("EPSG:32631", "EPSG:4326", RECT_GEOM)
    r = geojson_region(GRID, json.dumps({"type": "Feature", "properties": {}, "geometry": lonlat}))
    assert r.window == Window(5, 10, 10, 10) and r.n_pixels == 100
    fc = {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": RECT_GEOM, "properties": {}}],
          "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32631"}}}
    assert geojson_region(GRID, fc).n_pixels == 100
    with pytest.raises(ConfigError, match="longitude/latitude.*--polygon-crs"):
        geojson_region(GRID, json.dumps(RECT_GEOM))
    assert geojson_region(GRID, json.dumps(RECT_GEOM), "EPSG:32631").n_pixels == 100


def _write_vector(path, geoms, epsg, driver):
    from osgeo import ogr, osr

    ds = ogr.GetDriverByName(driver).CreateDataSource(str(path))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    lyr = ds.CreateLayer("fields", srs, ogr.wkbPolygon)
    for g in geoms:
        f = ogr.Feature(lyr.GetLayerDefn())
        f.SetGeometry(ogr.CreateGeometryFromJson(json.dumps(g)))
        lyr.CreateFeature(f)
    ds = None
    return path


def test_vector_files_in_their_own_crs(tmp_path):
    other = {"type": "Polygon", "coordinates": [[(600300, 4899750), (600350, 4899750), (600350, 4899700),
                                                 (600300, 4899700), (600300, 4899750)]]}
    gpkg = _write_vector(tmp_path / "fields.gpkg", [RECT_GEOM, other], 32631, "GPKG")
    r = vector_file_region(GRID, gpkg)
    assert r.n_pixels == 100 + 25 and r.window == Window(5, 10, 30, 20)
    lonlat = transform_geom("EPSG:32631", "EPSG:4326", RECT_GEOM)
    gj = _write_vector(tmp_path / "field.geojson", [lonlat], 4326, "GeoJSON")
    r2 = parse_region(GRID, polygon=str(gj))
    assert r2.window == Window(5, 10, 10, 10) and r2.n_pixels == 100
    with pytest.raises(InputError, match="no layer 'roads'"):
        vector_file_region(GRID, gpkg, layer="roads")


def test_one_vector_reader_for_regions_and_labels(tmp_path):
    """A lon/lat GeoJSON with a class field: the region of its polygons and its label map (both
    read by pimc_core.io.vector.read_vector and reprojected the same way) cover the same pixels."""
    from pimc_core.io.labels import read_labels
    from pimc_core.io.vector import read_vector

    lonlat = transform_geom("EPSG:32631", "EPSG:4326", RECT_GEOM)
    path = tmp_path / "fields.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": lonlat, "properties": {"crop": "wheat"}},
        {"type": "Feature", "geometry": None, "properties": {"crop": "maize"}},
        {"type": "Feature", "geometry": lonlat, "properties": {"crop": " "}},
    ]}))
    vec = read_vector(path, field="CROP")
    assert vec.crs == CRS.from_epsg(4326) and vec.fields == ("crop",) and vec.values == ["wheat"]
    assert len(read_vector(path).geometries) == 2 and read_vector(path).values is None
    region = vector_file_region(GRID, path)
    labels = read_labels(path, GRID, class_field="crop")
    inside = np.zeros((GRID.height, GRID.width), bool)
    w = region.window
    inside[w.row_off:w.row_off + w.height, w.col_off:w.col_off + w.width] = full_mask(region)
    np.testing.assert_array_equal(labels.array > 0, inside)
    assert inside.sum() == 100
    with pytest.raises(ConfigError, match="fields.geojson: no field 'kind' \\(fields: crop\\)"):
        read_vector(path, field="kind")


@pytest.mark.parametrize(
    "kwargs, exc, pattern",
    [
        (dict(bbox=(0, 0, 10, 10)), InputError, "does not overlap the raster"),
        (dict(bbox=(600000, 4899800, 600100, 4899900), bbox_crs="EPSG:0"), ConfigError, "unknown CRS 'EPSG:0'"),
        (dict(bbox=(600100, 4899800, 600000, 4899900)), ConfigError, "xmin < xmax"),
        (dict(polygon="POLYGON((0 0, 10 0, 10 10, 0 0))"), InputError, "does not overlap the raster"),
        (dict(polygon="POLYGON EMPTY"), InputError, "empty"),
        (dict(polygon="POINT(600100 4899900)"), ConfigError, "not a polygon"),
        (dict(polygon="POLYGON((600000 4900000, 600010"), ConfigError, "not valid WKT"),
        (dict(polygon=RECT_WKT, polygon_crs="EPSG:999999"), ConfigError, "unknown CRS"),
        (dict(polygon="POLYGON((600001 4899999, 600004 4899999, 600004 4899996, 600001 4899999))"),
         InputError, "covers no pixel centre"),
        (dict(polygon='{"type": "Polygon", "coordinates": [[[0, 0]'), ConfigError, "not valid GeoJSON"),
        (dict(polygon="missing.gpkg"), InputError, "missing.gpkg: no such file"),
        (dict(polygon=RECT_WKT, bbox=(600000, 4899800, 600100, 4899900)), ConfigError, "not both"),
        (dict(bbox=(600000, 4899800, 600100, 4899900), bbox_crs="EPSG:4326"), ConfigError,
         r"bbox 600000, 4899800, 600100, 4899900 \(EPSG:4326\): cannot be placed in EPSG:32631: they are not "
         r"longitude/latitude degrees .*\(set their CRS with --bbox-crs\)"),
        (dict(polygon=RECT_WKT, polygon_crs="EPSG:4326"), ConfigError, "cannot be placed in EPSG:32631"),
        (dict(polygon=json.dumps(RECT_GEOM), polygon_crs="EPSG:4326"), ConfigError, "set their CRS with --polygon-crs"),
    ],
)
def test_region_errors_are_clear(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        parse_region(GRID, **kwargs)


def test_unreadable_and_empty_vector_files_are_named(tmp_path):
    bad = tmp_path / "broken.gpkg"
    bad.write_bytes(b"this is not a geopackage")
    with pytest.raises(InputError, match="broken.gpkg: cannot read as a vector file"):
        parse_region(GRID, polygon=str(bad))
    empty = _write_vector(tmp_path / "empty.gpkg", [], 32631, "GPKG")
    with pytest.raises(InputError, match="empty.gpkg: the layer 'fields' has no polygon"):
        parse_region(GRID, polygon=str(empty))


def test_all_touched_takes_every_pixel_the_polygon_touches():
    thin = "POLYGON((600001 4899999, 600004 4899999, 600004 4899996, 600001 4899999))"
    r = wkt_region(GRID, thin, all_touched=True)
    assert r.n_pixels == 1 and r.window == Window(0, 0, 1, 1)
